"""Hypothesis: any chunking counts the same as one chunk, and the same as csv.DictReader; and for
both parsers, any chunking of any input, broken or not, has the same outcome as one chunk."""

from __future__ import annotations

import csv
import io
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from export_tally.core.aggregation import BodyResult
from export_tally.core.counts.parser import CountingParser
from export_tally.core.counts.tally import Key, Tally
from export_tally.core.csv.blocks import PIECE_BYTES, BlockParser
from export_tally.core.csv.reader_path import REQUIRED_COLUMNS
from export_tally.core.stats.parser import StatsParser
from export_tally.errors import CsvFormatError

# Hypothesis at its full example counts: the slow tier (uv run pytest -m slow).
pytestmark = pytest.mark.slow

# Characters that need quoting, that are multi-byte in UTF-8, and plain ones.
WEIRD = st.text(st.sampled_from(',"\r\n é\u2764\U0001f600aZ9_'), min_size=1, max_size=5)
KEYS = st.one_of(st.sampled_from(["P001", "P002", "hr", "bp_sys"]), WEIRD)
OTHER = st.one_of(st.sampled_from(["", "118", "2025-08-26T00:00:07.123456Z"]), WEIRD)


def quote(field: str, always: bool) -> str:
    if always or any(c in field for c in ',"\r\n'):
        return '"' + field.replace('"', '""') + '"'
    return field


@st.composite
def valid_bodies(draw: st.DrawFn) -> tuple[bytes, int]:
    """A valid export CSV body, and how many data rows it has."""
    extras = draw(st.lists(st.sampled_from(["note", "x"]), unique=True, max_size=2))
    columns = draw(st.permutations([*REQUIRED_COLUMNS, *extras]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    records = draw(st.lists(st.lists(OTHER, min_size=len(columns), max_size=len(columns))))
    for fields in records:
        fields[columns.index("patient_id")] = draw(KEYS)
        fields[columns.index("event_type")] = draw(KEYS)
    lines = [",".join(quote(name, draw(st.booleans())) for name in columns)]
    lines += [",".join(quote(field, draw(st.booleans())) for field in row) for row in records]
    for position in draw(st.lists(st.integers(1, len(lines)), max_size=3)):
        lines.insert(position, "")  # blank lines, which are not rows
    text = newline.join(lines) + (newline if draw(st.booleans()) else "")
    bom = "\ufeff" if draw(st.booleans()) else ""
    return (bom + text).encode("utf-8"), len(records)


@st.composite
def chunkings(draw: st.DrawFn, body: bytes) -> list[bytes]:
    """`body` cut at random places, or into pieces of one small fixed size."""
    if draw(st.booleans()):
        size = draw(st.integers(1, 7))
        return [body[i : i + size] for i in range(0, len(body), size)]
    cuts = sorted(set(draw(st.lists(st.integers(0, len(body)), max_size=12))))
    return [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]


PIECE_SIZES = st.sampled_from([1, 60, PIECE_BYTES])
"""Fast-path piece sizes: the default, and small ones so that little bodies cross pieces too."""


def feed_all(chunks: list[bytes], piece_bytes: int = PIECE_BYTES) -> BodyResult[Tally]:
    parser = CountingParser(piece_bytes=piece_bytes)
    for chunk in chunks:
        parser.feed(chunk)
    result = parser.finish()
    if b'"' not in b"".join(chunks):
        # Without quotes every row is plain: all of them must have taken the fast path.
        assert parser.plain_rows == result.rows
    return result


def dict_reader_counts(body: bytes) -> Counter[Key]:
    reader = csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline=""))
    return Counter((row["patient_id"], row["event_type"]) for row in reader)


@settings(max_examples=250, deadline=None)
@given(st.data(), valid_bodies())
def test_any_chunking_matches_whole_body_and_dict_reader(
    data: st.DataObject, generated: tuple[bytes, int]
) -> None:
    body, rows = generated
    whole = feed_all([body])
    assert whole == BodyResult(Tally(dict_reader_counts(body)), rows, 0, ())
    assert feed_all(data.draw(chunkings(body)), data.draw(PIECE_SIZES)) == whole


# The same property for both parsers. Lines that are mostly good for both (so some blocks take
# a fast path), written for the header drawn, and some that are not.
HEADERS = st.sampled_from(
    [
        ("patient_id,event_time,event_type,value", "\n"),
        ("value,event_type,x,patient_id,event_time", "\r\n"),
    ]
)
GOOD_ROWS = st.sampled_from(
    [
        ("P1", "2025-08-26T00:00:07Z", "heart_rate", "72"),
        ("P1", "2025-08-26T00:00:07.000001Z", "heart_rate", "250"),
        ("P2", "2025-08-26T00:00:06.999999Z", "spo2", "97.5"),
        ('"P,3"', "2025-08-26T00:00:08Z", "spo2", "-1"),
        ("P2", "", "bp", ""),  # a good row without stats only
    ]
)
BAD_PIECES = st.sampled_from(
    [b",", b'"', b'""', b"\n", b"\r\n", b"\r", b"P1", b"hr", b"\xc3\xa9", b"\xff", b"\xc3", b" ",
     b"2025-08-26T00:00:07Z", b"2025-02-30T00:00:00Z", b"1.5", b"1e3"]
)  # fmt: skip


@st.composite
def lines_for(draw: st.DrawFn, names: str, newline: str) -> bytes:
    """A good row for the header `names`, a blank line, or a run of bad pieces."""
    kind = draw(st.sampled_from(["good", "good", "blank", "bad"]))
    if kind == "blank":
        return newline.encode()
    if kind == "bad":
        return b"".join(draw(st.lists(BAD_PIECES, max_size=8)))
    fields = dict(zip(REQUIRED_COLUMNS, draw(GOOD_ROWS), strict=True))
    return (",".join(fields.get(name, "") for name in names.split(",")) + newline).encode()


def outcome(parser: BlockParser[Any], chunks: list[bytes]) -> BodyResult[Any] | str:
    try:
        for chunk in chunks:
            parser.feed(chunk)
        return parser.finish()
    except CsvFormatError as exc:
        return f"{type(exc).__name__}: {exc}"


@pytest.mark.parametrize("parser", [CountingParser, StatsParser], ids=["counts", "stats"])
@settings(max_examples=250, deadline=None)
@given(st.data(), HEADERS, st.sampled_from(["fail", "skip"]))
def test_chunking_never_changes_the_outcome_even_for_bad_input(
    parser: type[BlockParser[Any]], data: st.DataObject, header: tuple[str, str], on_bad_row: Any
) -> None:
    names, newline = header
    lines = data.draw(st.lists(lines_for(names, newline), max_size=25))
    body = (names + newline).encode() + b"".join(lines)
    expected = outcome(parser(on_bad_row=on_bad_row), [body])
    pieces = data.draw(PIECE_SIZES)
    chunked = parser(on_bad_row=on_bad_row, piece_bytes=pieces)
    assert outcome(chunked, data.draw(chunkings(body))) == expected
    if isinstance(expected, BodyResult):
        assert expected.aggregate.total == expected.rows - expected.skipped
