"""Hypothesis: any chunking counts the same as one chunk, and the same as csv.DictReader."""

from __future__ import annotations

import csv
import io
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from export_tally.core.errors import CsvFormatError
from export_tally.core.parse import REQUIRED_COLUMNS, CountingParser, ParseResult, parse_bytes
from export_tally.core.tally import Key, Tally

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


def feed_all(chunks: list[bytes], on_bad_row: str = "fail") -> ParseResult:
    parser = CountingParser(on_bad_row=on_bad_row)  # type: ignore[arg-type]
    for chunk in chunks:
        parser.feed(chunk)
    return parser.finish()


def dict_reader_counts(body: bytes) -> Counter[Key]:
    reader = csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline=""))
    return Counter((row["patient_id"], row["event_type"]) for row in reader)


@settings(max_examples=250, deadline=None)
@given(st.data(), valid_bodies())
def test_any_chunking_matches_whole_body_and_dict_reader(
    data: st.DataObject, generated: tuple[bytes, int]
) -> None:
    body, rows = generated
    whole = parse_bytes(body)
    assert whole == ParseResult(Tally(dict_reader_counts(body)), rows, 0, ())
    assert feed_all(data.draw(chunkings(body))) == whole


# Lines that are mostly good (so some blocks take the fast path) and some that are not.
GOOD_LINES = st.sampled_from([b"P1,t,hr,1\n", b"P2,,bp,\r\n", b'"P,3",t,hr,1\n', b"\n"])
BAD_PIECES = st.sampled_from(
    [b",", b'"', b'""', b"\n", b"\r\n", b"\r", b"P1", b"hr", b"\xc3\xa9", b"\xff", b"\xc3", b" "]
)
LINES = st.one_of(GOOD_LINES, GOOD_LINES, st.lists(BAD_PIECES, max_size=8).map(b"".join))
HEADERS = st.sampled_from(
    [b"patient_id,event_time,event_type,value\n", b"value,event_type,x,patient_id,event_time\r\n"]
)


def outcome(chunks: list[bytes], on_bad_row: str) -> ParseResult | str:
    try:
        return feed_all(chunks, on_bad_row)
    except CsvFormatError as exc:
        return f"{type(exc).__name__}: {exc}"


@settings(max_examples=250, deadline=None)
@given(st.data(), HEADERS, st.lists(LINES, max_size=25), st.sampled_from(["fail", "skip"]))
def test_chunking_never_changes_the_outcome_even_for_bad_input(
    data: st.DataObject, header: bytes, lines: list[bytes], on_bad_row: str
) -> None:
    body = header + b"".join(lines)
    expected = outcome([body], on_bad_row)
    assert outcome(data.draw(chunkings(body)), on_bad_row) == expected
    if isinstance(expected, ParseResult):
        assert expected.tally.total == expected.rows - expected.skipped
