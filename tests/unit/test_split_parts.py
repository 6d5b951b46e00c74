"""Parts of a body count every record exactly once, wherever their boundaries fall."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from export_tally.core.counts.parser import CountingParser
from export_tally.core.counts.tally import Tally, merge_tallies
from export_tally.core.csv.split import ByteRange, PartCutter, part_ranges

HEADER = b"patient_id,event_time,event_type,value\n"


def count_part(body: bytes, part: ByteRange, piece: int) -> tuple[int, Tally, bool]:
    cutter = PartCutter(part)
    parser = CountingParser()
    parser.feed(HEADER)
    offset = cutter.first_offset
    while offset < len(body) and not cutter.done:
        parser.feed(cutter.take(body[offset : offset + piece]))
        offset += piece
    result = parser.finish()
    return result.rows, result.aggregate, cutter.saw_quote


rows = st.lists(
    st.tuples(
        st.sampled_from(["A", "B", "Carol"]), st.sampled_from(["hr", "spo2"]), st.integers(0, 999)
    ),
    max_size=60,
)


@pytest.mark.slow  # Hypothesis at its full example count
@settings(max_examples=200, deadline=None)
@given(rows, st.booleans(), st.integers(1, 8), st.integers(1, 50), st.booleans())
def test_parts_count_each_record_once(
    records: list[tuple[str, str, int]], crlf: bool, parts: int, piece: int, final_newline: bool
) -> None:
    end = b"\r\n" if crlf else b"\n"
    body = HEADER + end.join(f"{p},t,{e},{v}".encode() for p, e, v in records)
    if records and final_newline:
        body += end
    parser = CountingParser()
    parser.feed(body)
    whole = parser.finish()
    ranges = part_ranges(len(HEADER), len(body), parts, min_part_bytes=1)
    if len(body) > len(HEADER):
        assert ranges[0].start == len(HEADER) and ranges[-1].end == len(body)
    else:
        assert ranges == []
    counted = [count_part(body, r, piece) for r in ranges]
    assert sum(n for n, _, _ in counted) == whole.rows
    assert merge_tallies(*(t for _, t, _ in counted)) == whole.aggregate
    assert not any(q for _, _, q in counted)


def test_a_quote_is_reported() -> None:
    body = HEADER + b'A,t,hr,1\n"B",t,hr,2\nC,t,hr,3\n'
    ranges = part_ranges(len(HEADER), len(body), 3, min_part_bytes=1)
    assert any(count_part(body, r, 7)[2] for r in ranges)


def test_small_bodies_are_not_split_below_the_minimum() -> None:
    assert part_ranges(10, 1010, 8, min_part_bytes=500) == [
        ByteRange(10, 510),
        ByteRange(510, 1010),
    ]
    assert part_ranges(10, 1000, 8, min_part_bytes=500) == [ByteRange(10, 1000)]
    assert part_ranges(10, 100, 8, min_part_bytes=500) == [ByteRange(10, 100)]
