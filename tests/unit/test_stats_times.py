"""The earliest and latest times per key, kept over runs of pieces in time order.

Mostly through the parser, against the naive reference: a run is searched from its two ends, so
keys near only one end, or missing from whole runs, are the cases to try.
"""

from __future__ import annotations

import pytest

from export_tally.core.csv.blocks import PIECE_BYTES
from export_tally.core.csv.fast_path import plain_fields
from export_tally.core.csv.reader_path import Columns
from export_tally.core.stats.parser import StatsParser
from export_tally.core.stats.row_rules import fixed_width_times
from export_tally.core.stats.time_bounds import RUN_BYTES, Piece, TimeBounds
from tests.unit.test_stats_parser import assert_matches_reference, rows, time_text


@pytest.mark.parametrize("run_bytes", [1, 3000, RUN_BYTES])
@pytest.mark.parametrize("piece_bytes", [60, 4096, PIECE_BYTES])
@pytest.mark.parametrize("where", ["early", "late"])
def test_a_key_seen_only_at_one_end_of_a_run_keeps_its_times(
    piece_bytes: int, where: str, run_bytes: int
) -> None:
    """The first and last times of each key are searched from the ends of a run of pieces in
    time order; a key that occurs only near the other end must still be found."""
    rare = [f"P0,{time_text(10**15 + i * 10**6)},heart_rate,{60 + i}" for i in range(3)]
    common = [f"P{1 + i % 3},{time_text(10**15 + (9 + i) * 10**6)},spo2,97" for i in range(300)]
    if where == "late":
        rare = [f"P0,{time_text(10**15 + (400 + i) * 10**6)},heart_rate,{60 + i}" for i in range(3)]
        body = rows(*common, *rare)
    else:
        body = rows(*rare, *common)
    parser = StatsParser(piece_bytes=piece_bytes, run_bytes=run_bytes)
    parser.feed(body)
    result = parser.finish()
    assert parser.plain_rows == result.rows == 303
    assert_matches_reference(body, result)


@pytest.mark.parametrize("run_bytes", [3000, 5000, 8000, 13000])
def test_a_key_missing_from_whole_runs_keeps_its_times_when_it_comes_back(run_bytes: int) -> None:
    """A run without a key seen before makes the parser forget the keys it wants; the key,
    back with a value it had before and only early in a later run, must still be wanted."""

    def common(start: int, count: int) -> list[str]:
        return [
            f"P{1 + i % 3},{time_text(10**15 + (start + i) * 10**6)},spo2,{90 + i % 7}"
            for i in range(count)
        ]

    rare = [f"P0,{time_text(10**15 + i * 10**6)},heart_rate,70" for i in range(2)]
    back = [f"P0,{time_text(10**15 + (2000 + i) * 10**6)},heart_rate,70" for i in range(2)]
    body = rows(*rare, *common(2, 1000), *back, *common(2002, 400))
    parser = StatsParser(piece_bytes=1000, run_bytes=run_bytes)
    parser.feed(body)
    result = parser.finish()
    assert parser.plain_rows == result.rows == 1404
    assert_matches_reference(body, result)


COLUMNS = Columns.from_header(["patient_id", "event_time", "event_type", "value"])


def piece_of(*keys_and_seconds: tuple[str, int]) -> tuple[bytes, Piece]:
    """A piece of rows of event type `x`, as the parser hands it over: bytes and columns."""
    block = "".join(
        f"{patient},{time_text(10**15 + seconds * 10**6)},x,1\n"
        for patient, seconds in keys_and_seconds
    ).encode()
    plain = plain_fields(block, COLUMNS.width)
    assert plain is not None
    times = fixed_width_times(plain.column(COLUMNS.time))
    assert times is not None
    return block, (plain.column(COLUMNS.patient), plain.column(COLUMNS.event_type), times)


def test_a_run_without_a_wanted_key_says_the_keys_are_forgotten() -> None:
    """The parser folds its entries when told, so every key that comes back is wanted again."""
    bounds = TimeBounds()
    bounds.want([(b"P1", b"x"), (b"P2", b"x")])
    block, piece = piece_of(("P1", 1), ("P2", 2))
    assert not bounds.end_run_before(piece[2], in_order=True)
    assert not bounds.add(block, COLUMNS, piece, in_order=True)
    block, piece = piece_of(("P1", 3), ("P1", 4))
    assert not bounds.end_run_before(piece[2], in_order=True)  # in order: the run goes on
    assert not bounds.add(block, COLUMNS, piece, in_order=True)
    assert not bounds.end_run()  # both keys in the run
    assert not bounds.end_run()  # no run
    block, piece = piece_of(("P1", 5))
    assert not bounds.add(block, COLUMNS, piece, in_order=True)
    assert bounds.end_run_before(piece_of(("P1", 0))[1][2], in_order=True)  # P2 missing
    block, piece = piece_of(("P1", 7))
    bounds.want([(b"P1", b"x")])  # entries folded: P1's is new again
    assert not bounds.add(block, COLUMNS, piece, in_order=True)
    assert not bounds.end_run()  # P2 is no longer wanted
    first: dict[tuple[str, str], int] = {}
    last: dict[tuple[str, str], int] = {("P2", "x"): 10**15 + 9 * 10**6}
    bounds.merge_into(first, last)
    assert first == {("P1", "x"): 10**15 + 1 * 10**6, ("P2", "x"): 10**15 + 2 * 10**6}
    assert last == {("P1", "x"): 10**15 + 7 * 10**6, ("P2", "x"): 10**15 + 9 * 10**6}
