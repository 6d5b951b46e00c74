"""The chunked CSV counter against edge cases: what it counts, and how it refuses."""

from __future__ import annotations

import pickle
import re

import pytest

from export_tally.core.errors import CsvFormatError
from export_tally.core.parse import BadRowError, CountingParser, ParseResult, _Layout, parse_bytes
from export_tally.core.tally import Tally

HEADER = b"patient_id,event_time,event_type,value\n"


def feed_all(chunks: list[bytes], **options: object) -> ParseResult:
    parser = CountingParser(**options)  # type: ignore[arg-type]
    for chunk in chunks:
        parser.feed(chunk)
    return parser.finish()


def one_byte_at_a_time(body: bytes) -> list[bytes]:
    return [body[i : i + 1] for i in range(len(body))]


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
    assert result == ParseResult(Tally(counts), rows, 0, ())
    assert parse_bytes(b"".join(chunks)) == result


BAD_ROWS = [
    pytest.param(HEADER + b"P1,t,hr,1\nP1,t,hr,1,9\n", 3, "expected 4 fields, found 5", 2, id="too-many-fields"),
    pytest.param(HEADER + b"P1,t,hr\n", 2, "expected 4 fields, found 3", 1, id="too-few-fields"),
    pytest.param(HEADER + b'P1,t,"hr,1\n",1,2\n', 2, "expected 4 fields, found 5", 1, id="quoted-wrong-count"),
    pytest.param(HEADER + b",t,hr,1\n", 2, "empty patient_id", 1, id="empty-patient-id"),
    pytest.param(HEADER + b"P1,t,,1\n", 2, "empty event_type", 1, id="empty-event-type"),
    pytest.param(HEADER + b'"",t,hr,1\n', 2, "empty patient_id", 1, id="empty-quoted-patient-id"),
    pytest.param(HEADER + b"P1,t,hr,1\nP\xff,t,hr,1\n", 3, "invalid UTF-8", 2, id="invalid-utf8-key"),
    pytest.param(HEADER + b"P1,t,hr,\xc3(\n", 2, "invalid UTF-8", 1, id="invalid-utf8-value"),
    pytest.param(HEADER + b'"P1"x,t,hr,1\n', 2, "malformed CSV", 1, id="text-after-closing-quote"),
    pytest.param(HEADER + b"P1,t\r,hr,1\n", 2, "malformed CSV", 1, id="bare-cr"),
    pytest.param(HEADER + b"P1,t,hr,1", 2, None, 1, id="good-last-row-without-newline"),
    pytest.param(HEADER + b"P1,t,hr", 2, "expected 4 fields, found 3", 1, id="bad-last-row-without-newline"),
    pytest.param(
        HEADER + b'"P\n1",t,"hr\n",1\n\nP2,t,hr\n', 6, "expected 4 fields, found 3", 2, id="line-number-after-quoted-newlines"
    ),
    pytest.param(
        HEADER + b'P1,t,hr,1\n"P\n1",t,hr\n', 3, "expected 4 fields, found 3", 2, id="multi-line-bad-row-starts-at"
    ),
]  # fmt: skip


@pytest.mark.parametrize(("body", "line", "reason", "rows"), BAD_ROWS)
def test_bad_row_fails_with_line_number(
    body: bytes, line: int, reason: str | None, rows: int
) -> None:
    if reason is None:
        assert parse_bytes(body).rows == rows
        return
    with pytest.raises(BadRowError) as caught:
        parse_bytes(body)
    assert caught.value.line_number == line
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"bad row at line {line}: {reason}")
    assert isinstance(caught.value, CsvFormatError)


@pytest.mark.parametrize(("body", "line", "reason", "rows"), BAD_ROWS)
def test_bad_row_is_skipped_and_counted(
    body: bytes, line: int, reason: str | None, rows: int
) -> None:
    result = parse_bytes(body, on_bad_row="skip")
    skipped = (0, ()) if reason is None else (1, (line,))
    assert (result.rows, result.skipped, result.skipped_lines) == (rows, *skipped)
    assert result.tally.total == rows - result.skipped


def test_skip_keeps_the_first_five_line_numbers() -> None:
    body = HEADER + b"".join(b"P1,t,hr,1\nbad\n" for _ in range(8)) + b"P9,t,,1"
    for chunks in ([body], one_byte_at_a_time(body)):
        result = feed_all(chunks, on_bad_row="skip")
        assert result.tally == Tally({("P1", "hr"): 8})
        assert result.rows == 17
        assert result.skipped == 9
        assert result.skipped_lines == (3, 5, 7, 9, 11)


def test_skip_in_a_block_with_quotes_and_bad_utf8() -> None:
    body = HEADER + b'P1,t,hr,1\n"P\xff",t,hr,1\nP2,"t\n",bp,2\nP3,\xff,hr,3\n'
    result = parse_bytes(body, on_bad_row="skip")
    assert result.tally == Tally({("P1", "hr"): 1, ("P2", "bp"): 1})
    assert (result.rows, result.skipped, result.skipped_lines) == (4, 2, (3, 6))


HEADER_ERRORS = [
    pytest.param(b"patient_id,event_time,event_type\nP1,t,hr\n", "header lacks column(s) value", id="missing-value"),
    pytest.param(b"patient,time,event_type,value\n", "header lacks column(s) patient_id, event_time", id="missing-two"),
    pytest.param(b" patient_id,event_time,event_type,value\n", "lacks column(s) patient_id", id="whitespace-not-stripped"),
    pytest.param(b"\n" + HEADER, "header lacks column(s) patient_id, event_time,", id="blank-first-line"),
    pytest.param(b"a,b", "header lacks column(s) patient_id", id="short-header-without-newline"),
    pytest.param(HEADER.rstrip() + b",value\n", "header repeats column(s) value", id="repeated-column"),
    pytest.param(b"\xff" + HEADER, "header is not valid UTF-8", id="header-invalid-utf8"),
    pytest.param(b'"patient_id"x,event_time,event_type,value\n', "header is not valid CSV", id="header-bad-quoting"),
    pytest.param(b'"patient_id,event_time,event_type,value\n', "never closed", id="header-unterminated-quote"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "message"), HEADER_ERRORS)
def test_header_errors(body: bytes, message: str) -> None:
    for on_bad_row in ("fail", "skip"):
        with pytest.raises(CsvFormatError, match=re.escape(message)) as caught:
            parse_bytes(body, on_bad_row=on_bad_row)
        assert not isinstance(caught.value, BadRowError)


def test_unterminated_quote_at_finish() -> None:
    parser = CountingParser(on_bad_row="skip")
    parser.feed(HEADER + b'P1,t,hr,1\nP2,t,"hr,1\nP3,t,hr,1\n')
    with pytest.raises(CsvFormatError, match=r"line 3: quoted field not closed"):
        parser.finish()


@pytest.mark.parametrize(
    ("before", "record", "line"),
    [
        pytest.param(HEADER, b"P1,t,hr," + b"9" * 80, 2, id="data-line"),
        pytest.param(b"", b"patient_id," * 8, 1, id="header-line"),
        pytest.param(HEADER, b'P1,t,"hr\n' + b"x" * 40 + b"\n" + b"x" * 40, 2, id="inside-quotes"),
    ],
)
def test_line_too_long(before: bytes, record: bytes, line: int) -> None:
    parser = CountingParser(max_line_bytes=64)
    parser.feed(before)
    for fed, chunk in enumerate(one_byte_at_a_time(record), start=1):
        try:
            parser.feed(chunk)
        except CsvFormatError as exc:
            assert str(exc).startswith(f"line {line} is longer than 64 bytes")
            assert fed == 65  # refused as soon as the bound is passed: memory stays bounded
            return
    pytest.fail("no error")


def test_line_at_the_bound_is_fine() -> None:
    line = b"P1,t,hr," + b"9" * (64 - 9) + b"\n"
    assert len(line) == 64
    result = feed_all([HEADER, *one_byte_at_a_time(line)], max_line_bytes=64)
    assert result.tally == Tally({("P1", "hr"): 1})


def test_rows_reports_progress() -> None:
    parser = CountingParser()
    assert parser.rows == 0
    parser.feed(HEADER + b"P1,t,hr,1\nP1,t")
    assert parser.rows == 1
    parser.feed(b',hr,1\n"P\n2",t,hr,1\n')
    assert parser.rows == 3
    assert parser.finish().rows == 3


def test_parser_is_spent_after_finish() -> None:
    parser = CountingParser()
    parser.finish()
    with pytest.raises(RuntimeError):
        parser.feed(HEADER)
    with pytest.raises(RuntimeError):
        parser.finish()


@pytest.mark.parametrize(
    "options",
    [{"on_bad_row": "ignore"}, {"max_line_bytes": 0}],
    ids=["unknown-mode", "zero-bound"],
)
def test_bad_options(options: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        CountingParser(**options)  # type: ignore[arg-type]


def test_errors_and_results_pickle() -> None:
    error = BadRowError(7, "empty patient_id")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.line_number, copy.reason, str(copy)) == (7, "empty patient_id", str(error))
    result = parse_bytes(HEADER + b"P1,t,hr,1\n")
    assert pickle.loads(pickle.dumps(result)) == result


# The fast path's own checks. Getting these wrong either miscounts (caught above) or silently
# sends every block to csv.reader, which only a benchmark would notice; hence these tests.
STANDARD = ["patient_id", "event_time", "event_type", "value"]
KEY_LAST = ["value", "event_time", "patient_id", "event_type"]
PLAIN_BLOCKS = [
    pytest.param(STANDARD, b"", [], id="empty"),
    pytest.param(STANDARD, b"P1,t,hr,1\nP2,,bp,\n", [(b"P1", b"hr"), (b"P2", b"bp")], id="lf"),
    pytest.param(STANDARD, b"P1,t,hr,1\r\n", [(b"P1", b"hr")], id="crlf"),
    pytest.param(STANDARD, "P\u00e9,t,hr,1\n".encode(), [("P\u00e9".encode(), b"hr")], id="utf8"),
    pytest.param(KEY_LAST, b"1,t,P1,hr\r\n", [(b"P1", b"hr")], id="key-last-crlf"),
    pytest.param(KEY_LAST, b"1,t,P1,\r\n", None, id="key-last-empty-before-cr"),
    pytest.param(STANDARD, b"P1,t,hr,1,2\n", None, id="extra-field"),
    pytest.param(STANDARD, b"P1,t,hr\n", None, id="missing-field"),
    pytest.param(STANDARD, b",P1,t,hr,1\n", None, id="leading-extra-field"),
    pytest.param(STANDARD, b"P1,t,hr\nP2,t,hr,1,9\n", None, id="field-counts-compensating"),
    pytest.param(STANDARD, b",t,hr,1\n", None, id="empty-patient-id"),
    pytest.param(STANDARD, b"P1,t,,1\n", None, id="empty-event-type"),
    pytest.param(STANDARD, b"P1,t,hr,1\n\n", None, id="blank-line"),
    pytest.param(STANDARD, b"P1,t\r,hr,1\n", None, id="bare-cr"),
    pytest.param(STANDARD, b"P1,t,hr,1\r\r\n", None, id="cr-cr-lf"),
    pytest.param(STANDARD, b"P1,t,hr,\xff\n", None, id="invalid-utf8"),
]


@pytest.mark.parametrize(("names", "block", "expected"), PLAIN_BLOCKS)
def test_match_plain(
    names: list[str], block: bytes, expected: list[tuple[bytes, bytes]] | None
) -> None:
    layout = _Layout.from_header(names)
    assert layout.match_plain(block, block.count(b"\n")) == expected


def test_plain_blocks_take_the_fast_path() -> None:
    parser = CountingParser()
    parser.feed(HEADER + b"P1,t,hr,1\n\nP1,t,hr,1\r\n" * 100)
    assert parser._raw_counts == {(b"P1", b"hr"): 200}
    assert not parser._text_counts
