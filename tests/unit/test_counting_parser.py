"""The chunked CSV counter against edge cases: what it counts (the refusals both parsers share
are in test_csv_parsers_shared.py)."""

from __future__ import annotations

import pytest

from export_tally.core.aggregation import BodyResult
from export_tally.core.counts.parser import CountingParser
from export_tally.core.counts.tally import Tally
from tests.support import feeding
from tests.support.feeding import HEADER, one_byte_at_a_time


def feed_all(chunks: list[bytes], **options: object) -> BodyResult[Tally]:
    return feeding.feed_all(CountingParser(**options), chunks)  # type: ignore[arg-type]


GOOD = [
    pytest.param([], {}, 0, id="no-chunks"),
    pytest.param([b""], {}, 0, id="empty-body"),
    pytest.param([HEADER], {}, 0, id="header-only"),
    pytest.param([HEADER.rstrip()], {}, 0, id="header-only-without-newline"),
    pytest.param([HEADER.replace(b"\n", b"\r\n")], {}, 0, id="header-only-crlf"),
    pytest.param([b"\xef\xbb\xbf"], {}, 0, id="bom-only"),
    pytest.param(
        [HEADER + b"P1,t,hr,1\nP1,t,hr,2\nP2,t,bp,3\n"],
        {("P1", "hr"): 2, ("P2", "bp"): 1},
        3,
        id="plain-lf",
    ),
    pytest.param(
        [HEADER.replace(b"\n", b"\r\n") + b"P1,t,hr,1\r\nP2,t,bp,\r\n"],
        {("P1", "hr"): 1, ("P2", "bp"): 1},
        2,
        id="crlf",
    ),
    pytest.param(
        [HEADER.replace(b"\n", b"\r"), b"\nP1,t,hr,1\r", b"\nP2,t,bp,2\r", b"\n"],
        {("P1", "hr"): 1, ("P2", "bp"): 1},
        2,
        id="crlf-split-across-chunks",
    ),
    pytest.param(
        [HEADER + b"P1,t,hr,1\nP2,t,bp,2"],
        {("P1", "hr"): 1, ("P2", "bp"): 1},
        2,
        id="no-final-newline",
    ),
    pytest.param(
        [HEADER + b"P1,t,hr,1\r\nP2,t,bp,2\r"],
        {("P1", "hr"): 1, ("P2", "bp"): 1},
        2,
        id="no-final-newline-after-cr",
    ),
    pytest.param([HEADER + b"P1,,hr,\n"], {("P1", "hr"): 1}, 1, id="empty-time-value"),
    pytest.param([HEADER + b'"P,1",t,"hr,x",1\n'], {("P,1", "hr,x"): 1}, 1, id="quoted-commas"),
    pytest.param(
        [HEADER + b'"P\n1",t,"h\r\nr",1\nP2,t,bp,"1\n2"\n'],
        {("P\n1", "h\r\nr"): 1, ("P2", "bp"): 1},
        2,
        id="quoted-newlines",
    ),
    pytest.param([HEADER + b'"P""1",t,"""hr""",1\n'], {('P"1', '"hr"'): 1}, 1, id="doubled-quotes"),
    pytest.param(
        [b'"patient_id","event_time","event_type","value"\r\n"P1","t","hr","1"\r\n'],
        {("P1", "hr"): 1},
        1,
        id="everything-quoted",
    ),
    pytest.param(
        [HEADER + b'P1,t,"h', b"r\n", b'x",1\nP2,t,', b'"b""', b'p",2\n'],
        {("P1", "hr\nx"): 1, ("P2", 'b"p'): 1},
        2,
        id="quoted-field-split-across-chunks",
    ),
    pytest.param([b"\xef\xbb\xbf" + HEADER + b"P1,t,hr,1\n"], {("P1", "hr"): 1}, 1, id="bom"),
    pytest.param(
        [b"\xef", b"\xbb", b"\xbf" + HEADER[:5], HEADER[5:] + b"P1,t,hr,1\n"],
        {("P1", "hr"): 1},
        1,
        id="bom-split-across-chunks",
    ),
    pytest.param(
        [HEADER + b"P\xc3", b"\xa9,t,h\xe2\x9d", b"\xa4,1\n"],
        {("P\u00e9", "h\u2764"): 1},
        1,
        id="utf8-char-split-across-chunks",
    ),
    pytest.param(
        [b"value,event_type,event_time,patient_id\n1,hr,t,P1\n2,bp,t,P1\n"],
        {("P1", "hr"): 1, ("P1", "bp"): 1},
        2,
        id="columns-in-another-order",
    ),
    pytest.param(
        [b"event_type,patient_id,event_time,value\nhr,P1,t,1\nbp,P1,t,2\nhr,P2,t,3\n"],
        {("P1", "hr"): 1, ("P1", "bp"): 1, ("P2", "hr"): 1},
        3,
        id="event-type-first",
    ),
    pytest.param(
        [b"event_time,patient_id,value,event_type\r\nt,P1,1,hr\r\nt,P2,1,hr\r\n"],
        {("P1", "hr"): 1, ("P2", "hr"): 1},
        2,
        id="key-column-last-crlf",
    ),
    pytest.param(
        [b"x,patient_id,y,event_time,event_type,value,z\n,P1,a,t,hr,1,\n"],
        {("P1", "hr"): 1},
        1,
        id="extra-columns",
    ),
    pytest.param(
        [HEADER + b"\nP1,t,hr,1\n\n\r\nP1,t,hr,1\n\n"],
        {("P1", "hr"): 2},
        2,
        id="blank-lines",
    ),
    pytest.param(
        [HEADER + b'\n"P1",t,hr,1\n\r\n', b"\n"], {("P1", "hr"): 1}, 1, id="blank-lines-quoted"
    ),
    pytest.param(
        one_byte_at_a_time(HEADER + b'P1,t,hr,1\r\n"P\n2",t,bp,2\r\nP3,t,hr,3'),
        {("P1", "hr"): 1, ("P\n2", "bp"): 1, ("P3", "hr"): 1},
        3,
        id="one-byte-chunks",
    ),
]


@pytest.mark.parametrize(("chunks", "counts", "rows"), GOOD)
def test_counts(chunks: list[bytes], counts: dict[tuple[str, str], int], rows: int) -> None:
    result = feed_all(chunks)
    assert result == BodyResult(Tally(counts), rows, 0, ())
    assert feed_all([b"".join(chunks)]) == result


def test_skip_in_a_block_with_quotes_and_bad_utf8() -> None:
    body = HEADER + b'P1,t,hr,1\n"P\xff",t,hr,1\nP2,"t\n",bp,2\nP3,\xff,hr,3\n'
    result = feed_all([body], on_bad_row="skip")
    assert result.aggregate == Tally({("P1", "hr"): 1, ("P2", "bp"): 1})
    assert (result.rows, result.skipped, result.skipped_lines) == (4, 2, (3, 6))


# The fast path's own decisions. Getting these wrong either miscounts (caught above) or silently
# sends every block to csv.reader, which only a benchmark would notice; hence these tests.
STANDARD = "patient_id,event_time,event_type,value"
KEY_LAST = "value,event_time,patient_id,event_type"
FAST_PATH = [
    pytest.param(STANDARD, b"P1,t,hr,1\nP2,,bp,\n", True, id="lf"),
    pytest.param(STANDARD, b"P1,t,hr,1\r\nP2,t,bp,2\n", True, id="crlf-and-lf"),
    pytest.param(STANDARD, "P\u00e9,t,h\u2764,1\n".encode(), True, id="utf8"),
    pytest.param(KEY_LAST, b"1,t,P1,hr\r\n", True, id="key-last-crlf"),
    pytest.param(KEY_LAST, b"1,t,P1,\r\n", False, id="key-last-empty-before-cr"),
    pytest.param(STANDARD, b",t,hr,1\n", False, id="empty-patient-id"),
    pytest.param(STANDARD, b"P1,t,,1\n", False, id="empty-event-type"),
    pytest.param(STANDARD, b"P1,t,hr,1\nP2,t,,1\n", False, id="empty-key-after-good-rows"),
    pytest.param(STANDARD, b"P1,t,hr,1,2\n", False, id="extra-field"),
    pytest.param(STANDARD, b"P1,t,hr\nP2,t,hr,1,9\n", False, id="field-counts-compensating"),
    pytest.param("event_type,value,patient_id,event_time", b"hr,1,P1,t\n", True, id="type-first"),
    pytest.param(STANDARD, b"P1,t\r,hr,1\n", False, id="bare-cr"),
]


@pytest.mark.parametrize(("names", "block", "fast"), FAST_PATH)
def test_fast_path_takes_only_blocks_it_can_prove_good(
    names: str, block: bytes, fast: bool
) -> None:
    parser = CountingParser(on_bad_row="skip")
    parser.feed(names.encode() + b"\n" + block)
    assert (parser.plain_rows == parser.rows > 0) is fast
    body = names.encode() + b"\n" + block
    assert feed_all([body], on_bad_row="skip") == feed_all(
        [body[i : i + 1] for i in range(len(body))], on_bad_row="skip"
    )


def test_a_declined_block_leaves_no_trace() -> None:
    parser = CountingParser(on_bad_row="skip")
    parser.feed(HEADER + b"P1,t,hr,1\n")
    parser.feed(b"P1,t,hr,1\nP2,t,bp,1\nP3,t,,1\n")  # new keys, one of them empty
    parser.feed(b"P3,t,,1\n")  # that key again: still checked, as it never entered
    result = parser.finish()
    assert (parser.plain_rows, result.rows, result.skipped) == (1, 5, 2)
    assert result.aggregate == Tally({("P1", "hr"): 2, ("P2", "bp"): 1})


def test_plain_blocks_take_the_fast_path() -> None:
    parser = CountingParser()
    parser.feed(HEADER + b"P1,t,hr,1\n\nP1,t,hr,1\r\n" * 100)
    assert parser.plain_rows == parser.rows == 200
    assert parser.finish().aggregate == Tally({("P1", "hr"): 200})
