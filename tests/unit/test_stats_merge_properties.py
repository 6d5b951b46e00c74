"""Hypothesis: stats of downloads, merged in any order and grouping, match the naive reference.

Events are generated with ties, the no-fraction time form next to fractional ones, decimals and
negative values; split into consecutive downloads (as the exports promise), or shuffled and
overlapping (which they do not, and which must still give the exact answer).
"""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from export_tally.core.aggregation import BodyResult
from export_tally.core.csv.blocks import PIECE_BYTES
from export_tally.core.stats.aggregate import Stats, merge_stats
from export_tally.core.stats.parser import StatsParser
from export_tally.core.stats.time_bounds import RUN_BYTES
from tests.support import stats_reference as reference
from tests.unit.test_stats_parser import time_text

# Hypothesis at its full example counts: the slow tier (uv run pytest -m slow).
pytestmark = pytest.mark.slow

BASE = 1_756_166_407 * 1_000_000  # 2025-08-26T00:00:07Z
# Around a whole second (..06.999999, 07, 07.000001), a day boundary, and anywhere.
OFFSETS = st.one_of(
    st.sampled_from([-1, 0, 1, 2, -1_000_000, 1_000_000, 86_393_000_000, 86_393_000_001]),
    st.integers(-5_000_000, 90_000_000_000),
)
VALUES = st.one_of(
    st.integers(-20, 260).map(str),
    st.tuples(st.integers(-2000, 2000), st.integers(1, 3)).map(
        lambda nd: (
            ("-" if nd[0] < 0 else "")
            + f"{abs(nd[0]) // 10 ** nd[1]}.{abs(nd[0]) % 10 ** nd[1]:0{nd[1]}d}"
        )
    ),
    st.sampled_from(["+5", "007", "72.0", "-0", "180", "180.0", "39.99"]),
)
EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["P1", "P2", "P\u00e9"]),
        st.sampled_from(["heart_rate", "spo2", "bp_sys", "bp_dia", "other"]),
        VALUES,
        OFFSETS,
        st.sampled_from([None, None, None, 0, 2, -5]),  # see with_offsets
    ),
    max_size=40,
)
COLUMNS = st.sampled_from(
    [
        ["patient_id", "event_time", "event_type", "value"],
        ["value", "event_type", "event_time", "patient_id"],
        ["event_time", "note", "value", "patient_id", "event_type"],
    ]
)

Event = tuple[str, str, str, int, int | None]


def body_of(events: list[Event], columns: list[str], newline: str, with_offsets: bool) -> bytes:
    """The body; times in UTC with `Z`, or also with other offsets (which take the csv path)."""
    lines = [",".join(columns)]
    for patient, event_type, value, offset, hours in events:
        if not with_offsets:
            hours = None
        fields = {
            "patient_id": patient,
            "event_time": time_text(BASE + offset, hours),
            "event_type": event_type,
            "value": value,
            "note": "",
        }
        lines.append(",".join(fields[name] for name in columns))
    return (newline.join(lines) + newline).encode()


@st.composite
def chunkings(draw: st.DrawFn, body: bytes) -> list[bytes]:
    cuts = sorted(set(draw(st.lists(st.integers(0, len(body)), max_size=8))))
    return [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]


RUNS = st.sampled_from([1, 150, RUN_BYTES])  # a run per piece, of a few pieces, or long


def feed_all(chunks: list[bytes], small_pieces: bool = False, **options: Any) -> BodyResult[Stats]:
    """Fed in `chunks`; with `small_pieces` the fast path gets pieces of a line or two, so
    every piece boundary is tried (and, with small `run_bytes`, every end of a run)."""
    parser = StatsParser(piece_bytes=60 if small_pieces else PIECE_BYTES, **options)
    for chunk in chunks:
        parser.feed(chunk)
    return parser.finish()


def merged_in_any_order(parts: list[Stats], rng: random.Random) -> Stats:
    """Merge in a random order and a random grouping (a random binary tree)."""
    parts = parts[:]
    rng.shuffle(parts)
    while len(parts) > 1:
        i = rng.randrange(len(parts) - 1)
        parts[i : i + 2] = [merge_stats(parts[i], parts[i + 1])]
    return parts[0] if parts else Stats()


def split(events: list[Event], cuts: list[int]) -> list[list[Event]]:
    edges = [0, *sorted(set(cuts)), len(events)]
    return [events[a:b] for a, b in itertools.pairwise(edges)]


@settings(max_examples=150, deadline=None)
@given(
    st.data(),
    EVENTS,
    COLUMNS,
    st.sampled_from(["\n", "\r\n"]),
    st.lists(st.integers(0, 40), max_size=4),
    st.booleans(),
    st.randoms(use_true_random=False),
)
def test_downloads_merged_in_any_order_match_the_reference(
    data: st.DataObject,
    events: list[Event],
    columns: list[str],
    newline: str,
    cuts: list[int],
    with_offsets: bool,
    rng: random.Random,
) -> None:
    events = sorted(events, key=lambda event: event[3])  # time order, ties in any order
    parts = []
    for download in split(events, cuts):
        body = body_of(download, columns, newline, with_offsets)
        result = feed_all(
            data.draw(chunkings(body)),
            small_pieces=data.draw(st.booleans()),
            fold_at=data.draw(st.sampled_from([1, 7, 10**5])),
            run_bytes=data.draw(RUNS),
        )
        assert result.rows == len(download)
        parts.append(result.aggregate)
    whole = reference.events_of(body_of(events, columns, newline, with_offsets))
    for precision in (1, 6):
        assert merged_in_any_order(parts, rng).to_report(precision) == reference.report(
            whole, precision
        )


@settings(max_examples=100, deadline=None)
@given(
    st.data(),
    EVENTS,
    st.lists(st.integers(0, 40), max_size=4),
    st.randoms(use_true_random=False),
)
def test_times_out_of_order_and_overlapping_downloads_are_still_exact(
    data: st.DataObject, events: list[Event], cuts: list[int], rng: random.Random
) -> None:
    rng.shuffle(events)  # rows go back in time, and downloads' time ranges overlap
    columns = ["patient_id", "event_time", "event_type", "value"]
    parts = [
        feed_all(
            data.draw(chunkings(body_of(download, columns, "\n", False))),
            small_pieces=data.draw(st.booleans()),
            run_bytes=data.draw(RUNS),
        ).aggregate
        for download in split(events, cuts)
    ]
    whole = reference.events_of(body_of(events, columns, "\n", False))
    assert merged_in_any_order(parts, rng).to_report(6) == reference.report(whole, 6)
