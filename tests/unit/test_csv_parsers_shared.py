"""What both parsers share (blocks, csv_rows), run against each, and their aggregators' seam."""

from __future__ import annotations

import json
import pickle
import re
from collections import Counter
from typing import Any

import pytest

from export_tally.core.aggregation import Aggregator
from export_tally.core.counts.parser import CountAggregator, CountingParser
from export_tally.core.counts.tally import Tally
from export_tally.core.csv.blocks import BlockParser
from export_tally.core.csv.fast_path import count_checked, key_fields, plain_fields, plain_keys
from export_tally.core.stats.aggregate import Stats
from export_tally.core.stats.parser import StatsAggregator, StatsParser
from export_tally.errors import BadRowError, CsvFormatError
from tests.support.feeding import HEADER, feed_all, one_byte_at_a_time

T = "2025-08-26T00:00:07Z"
PARSERS = [pytest.param(CountingParser, id="counts"), pytest.param(StatsParser, id="stats")]
AGGREGATORS = [
    pytest.param(CountAggregator, id="counts"),
    pytest.param(StatsAggregator, id="stats"),
]

ParserClass = type[BlockParser[Any]]


def body(text: str) -> bytes:
    """HEADER and `text`, where {t} is a good event_time (so the stats rules pass too)."""
    return HEADER + text.format(t=T).encode("utf-8", "surrogateescape")


BAD_ROWS = [
    pytest.param(body("P1,{t},hr,1\nP1,{t},hr,1,9\n"), 3, "expected 4 fields, found 5", 2, id="too-many-fields"),
    pytest.param(body("P1,{t},hr\n"), 2, "expected 4 fields, found 3", 1, id="too-few-fields"),
    pytest.param(body('P1,{t},"hr,1\n",1,2\n'), 2, "expected 4 fields, found 5", 1, id="quoted-wrong-count"),
    pytest.param(body(",{t},hr,1\n"), 2, "empty patient_id", 1, id="empty-patient-id"),
    pytest.param(body("P1,{t},,1\n"), 2, "empty event_type", 1, id="empty-event-type"),
    pytest.param(body('"",{t},hr,1\n'), 2, "empty patient_id", 1, id="empty-quoted-patient-id"),
    pytest.param(body("P1,{t},hr,1\nP\udcff,{t},hr,1\n"), 3, "invalid UTF-8", 2, id="invalid-utf8-key"),
    pytest.param(body("P1,{t},hr,\udcc3(\n"), 2, "invalid UTF-8", 1, id="invalid-utf8-value"),
    pytest.param(body('"P1"x,{t},hr,1\n'), 2, "malformed CSV", 1, id="text-after-closing-quote"),
    pytest.param(body("P1,{t}\r,hr,1\n"), 2, "malformed CSV", 1, id="bare-cr"),
    pytest.param(body("P1,{t},hr,1"), 2, None, 1, id="good-last-row-without-newline"),
    pytest.param(body("P1,{t},hr"), 2, "expected 4 fields, found 3", 1, id="bad-last-row-without-newline"),
    pytest.param(
        body('"P\n1",{t},"hr\n",1\n\nP2,{t},hr\n'), 6, "expected 4 fields, found 3", 2, id="line-number-after-quoted-newlines"
    ),
    pytest.param(
        body('P1,{t},hr,1\n"P\n1",{t},hr\n'), 3, "expected 4 fields, found 3", 2, id="multi-line-bad-row-starts-at"
    ),
]  # fmt: skip


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize(("body", "line", "reason", "rows"), BAD_ROWS)
def test_bad_row_fails_with_line_number(
    parser: ParserClass, body: bytes, line: int, reason: str | None, rows: int
) -> None:
    if reason is None:
        assert feed_all(parser(), [body]).rows == rows
        return
    with pytest.raises(BadRowError) as caught:
        feed_all(parser(), [body])
    assert caught.value.line_number == line
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"bad row at line {line}: {reason}")
    assert isinstance(caught.value, CsvFormatError)


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize(("body", "line", "reason", "rows"), BAD_ROWS)
def test_bad_row_is_skipped_and_counted(
    parser: ParserClass, body: bytes, line: int, reason: str | None, rows: int
) -> None:
    result = feed_all(parser(on_bad_row="skip"), [body])
    skipped = (0, ()) if reason is None else (1, (line,))
    assert (result.rows, result.skipped, result.skipped_lines) == (rows, *skipped)
    assert result.aggregate.total == rows - result.skipped


@pytest.mark.parametrize("parser", PARSERS)
def test_skip_keeps_the_first_five_line_numbers(parser: ParserClass) -> None:
    lines = body("".join("P1,{t},hr,1\nbad\n" for _ in range(8)) + "P9,{t},,1")
    for chunks in ([lines], one_byte_at_a_time(lines)):
        result = feed_all(parser(on_bad_row="skip"), chunks)
        assert result.aggregate.total == 8
        assert result.rows == 17
        assert result.skipped == 9
        assert result.skipped_lines == (3, 5, 7, 9, 11)


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
    pytest.param(b'patient_id,event_time,event_type,value"\nx"\n', "header is not valid CSV (quotes do not pair up)", id="header-quotes-not-paired"),
]  # fmt: skip


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize(("body", "message"), HEADER_ERRORS)
def test_header_errors(parser: ParserClass, body: bytes, message: str) -> None:
    for on_bad_row in ("fail", "skip"):
        with pytest.raises(CsvFormatError, match=re.escape(message)) as caught:
            feed_all(parser(on_bad_row=on_bad_row), [body])
        assert not isinstance(caught.value, BadRowError)


@pytest.mark.parametrize("parser", PARSERS)
def test_unterminated_quote_at_finish(parser: ParserClass) -> None:
    started = parser(on_bad_row="skip")
    started.feed(body('P1,{t},hr,1\nP2,{t},"hr,1\nP3,{t},hr,1\n'))
    with pytest.raises(CsvFormatError, match=r"line 3: quoted field not closed"):
        started.finish()


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize(
    ("before", "record", "line"),
    [
        pytest.param(HEADER, b"P1,t,hr," + b"9" * 80, 2, id="data-line"),
        pytest.param(b"", b"patient_id," * 8, 1, id="header-line"),
        pytest.param(HEADER, b'P1,t,"hr\n' + b"x" * 40 + b"\n" + b"x" * 40, 2, id="inside-quotes"),
    ],
)
def test_line_too_long(parser: ParserClass, before: bytes, record: bytes, line: int) -> None:
    bounded = parser(max_line_bytes=64)
    bounded.feed(before)
    for fed, chunk in enumerate(one_byte_at_a_time(record), start=1):
        try:
            bounded.feed(chunk)
        except CsvFormatError as exc:
            assert str(exc).startswith(f"line {line} is longer than 64 bytes")
            assert fed == 65  # refused as soon as the bound is passed: memory stays bounded
            return
    pytest.fail("no error")


@pytest.mark.parametrize("parser", PARSERS)
def test_line_at_the_bound_is_fine(parser: ParserClass) -> None:
    start = f"P1,{T},hr,".encode()
    line = start + b"9" * (63 - len(start)) + b"\n"
    assert len(line) == 64
    result = feed_all(parser(max_line_bytes=64), [HEADER, *one_byte_at_a_time(line)])
    assert result.aggregate.total == 1


@pytest.mark.parametrize("parser", PARSERS)
def test_rows_reports_progress(parser: ParserClass) -> None:
    counting = parser()
    assert counting.rows == 0
    counting.feed(body("P1,{t},hr,1\nP1,"))
    assert counting.rows == 1
    counting.feed(f'{T},hr,1\n"P\n2",{T},hr,1\n'.encode())
    assert counting.rows == 3
    assert counting.finish().rows == 3


@pytest.mark.parametrize("parser", PARSERS)
def test_parser_is_spent_after_finish(parser: ParserClass) -> None:
    spent = parser()
    spent.finish()
    with pytest.raises(RuntimeError):
        spent.feed(HEADER)
    with pytest.raises(RuntimeError):
        spent.finish()


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize(
    "options",
    [{"on_bad_row": "ignore"}, {"max_line_bytes": 0}, {"piece_bytes": 0}],
    ids=["unknown-mode", "zero-bound", "zero-piece-size"],
)
def test_bad_options(parser: ParserClass, options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        parser(**options)


@pytest.mark.parametrize("parser", PARSERS)
def test_errors_and_results_pickle(parser: ParserClass) -> None:
    error = BadRowError(7, "empty patient_id")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.line_number, copy.reason, str(copy)) == (7, "empty patient_id", str(error))
    result = feed_all(parser(), [body("P1,{t},hr,1\n")])
    assert pickle.loads(pickle.dumps(result)) == result


@pytest.mark.parametrize("aggregator", AGGREGATORS)
def test_aggregators_round_trip_through_checkpoint_json(aggregator: Any) -> None:
    seam: Aggregator[Any] = aggregator("skip")
    parts = [
        feed_all(seam.new_parser(), [body(rows)]).aggregate
        for rows in ("P1,{t},hr,1\nP2,{t},hr,2\n", "P1,{t},hr,3\nP1,{t},bp,4\n")
    ]
    merged = seam.merge(parts)
    assert merged.total == 4
    assert seam.from_json(json.loads(json.dumps(seam.to_json(merged)))) == merged
    assert seam.merge([]) == type(merged)()
    assert seam.report(merged, 1)["patients"].keys() == {"P1", "P2"}


def test_aggregator_keys_name_the_kind_and_the_mode() -> None:
    keys = {a(m).key for a in (CountAggregator, StatsAggregator) for m in ("fail", "skip")}
    assert keys == {"counts/fail", "counts/skip", "stats/fail", "stats/skip"}


@pytest.mark.parametrize(
    ("aggregator", "foreign"),
    [
        pytest.param(CountAggregator(), Stats(), id="stats-into-counts"),
        pytest.param(StatsAggregator(), Tally({("P1", "hr"): 1}), id="counts-into-stats"),
    ],
)
def test_merging_another_kind_raises(aggregator: Aggregator[Any], foreign: object) -> None:
    mine = feed_all(aggregator.new_parser(), [body("P1,{t},hr,1\n")]).aggregate
    with pytest.raises(TypeError, match="different kinds never mix"):
        aggregator.merge([mine, foreign])


# The one proof both fast paths rely on: a block is all good rows, or it is left to csv.reader.
PROOFS = [
    pytest.param(b"", [], id="empty"),
    pytest.param(b"P1,t,hr,1\nP2,,bp,\n", [[b"P1", b"t", b"hr", b"1"], [b"P2", b"", b"bp", b""]], id="lf"),
    pytest.param(b"P1,t,hr,1\r\nP2,t,bp,2\n", [[b"P1", b"t", b"hr", b"1"], [b"P2", b"t", b"bp", b"2"]], id="crlf-and-lf"),
    pytest.param("P\u00e9,t,hr,1\n".encode(), [["P\u00e9".encode(), b"t", b"hr", b"1"]], id="utf8"),
    pytest.param(b",t,,\n", [[b"", b"t", b"", b""]], id="empty-fields-are-for-the-parser"),
    pytest.param(b"P1,t,hr,1,2\n", None, id="extra-field"),
    pytest.param(b"P1,t,hr\n", None, id="missing-field"),
    pytest.param(b"P1,t,hr\nP2,t,hr,1,9\n", None, id="field-counts-compensating"),
    pytest.param(b"P1,t,hr,1\n\n", None, id="blank-line"),
    pytest.param(b"\nP1,t,hr,1\n", None, id="blank-line-first"),
    pytest.param(b"P1,t,hr,1\nP2,t,hr,1", None, id="no-line-end-at-the-end"),
    pytest.param(b"P1,t,hr\n,1", None, id="a-field-after-the-last-line-end"),
    pytest.param(b"P1,t,hr,1\nP2", None, id="a-line-without-its-end"),
    pytest.param(b"P1,t\r,hr,1\n", None, id="bare-cr"),
    pytest.param(b"P1,t,hr,1\r\r\n", None, id="cr-cr-lf"),
    pytest.param(b"P1,t,hr,1\r", None, id="cr-at-the-end"),
    pytest.param(b"P1,t,hr,\xff\n", None, id="invalid-utf8"),
    pytest.param(b"P1,t,hr,\xc3\n", None, id="truncated-utf8"),
]  # fmt: skip


@pytest.mark.parametrize(("block", "rows"), PROOFS)
def test_plain_fields_proves_every_line_a_row(block: bytes, rows: list[list[bytes]] | None) -> None:
    plain = plain_fields(block, 4)
    if rows is None:
        assert plain is None
        return
    assert plain is not None
    assert plain.rows == len(rows)
    assert [plain.column(k) for k in range(4)] == [[row[k] for row in rows] for k in range(4)]


@pytest.mark.parametrize(("left", "right"), [(0, 2), (0, 3), (1, 2), (2, 3)])
@pytest.mark.parametrize(("block", "rows"), PROOFS)
def test_plain_keys_and_key_fields_prove_every_line_a_row(
    block: bytes, rows: list[list[bytes]] | None, left: int, right: int
) -> None:
    """With the first column a key column, the keys carry the line ends and `key_fields` ends
    the proof; otherwise `plain_fields` proves it. Either way, a block is proven exactly when it
    is all good rows with non-empty keys, and then every row's key is right + LF + left."""
    keys = plain_keys(block, 4, left, right)
    proven = keys is not None and all(key_fields(key) for key in set(keys))
    if rows is None or not all(row[left] and row[right] for row in rows):
        assert not proven
        return
    assert keys is not None
    assert proven
    assert keys.rows == len(rows)
    assert list(keys) == list(keys) == [row[right] + b"\n" + row[left] for row in rows]
    assert [key_fields(key) for key in keys] == [(row[right], row[left]) for row in rows]


@pytest.mark.parametrize(("block", "rows"), PROOFS)
def test_plain_fields_keeping_line_ends_proves_every_line_a_row(
    block: bytes, rows: list[list[bytes]] | None
) -> None:
    """Each row's last field keeps its LF; checking that it does (the parser's part) ends the
    proof."""
    plain = plain_fields(block, 4, keep_line_ends=True)
    proven = plain is not None and all(
        field.endswith(b"\n") and field.count(b"\n") == 1 for field in plain.column(3)
    )
    if rows is None:
        assert not proven
        return
    assert plain is not None
    assert proven
    assert plain.rows == len(rows)
    expected = [[*row[:3], row[3] + b"\n"] for row in rows]
    assert [plain.column(k) for k in range(4)] == [[row[k] for row in expected] for k in range(4)]


def test_count_checked_checks_each_new_key_once_and_undoes_a_failed_count() -> None:
    """How the fast paths end their proofs: only keys new to the Counter are checked, and a
    failed check leaves the Counter as it was, old counts included."""
    counts = Counter({b"a": 2, b"b": 1})
    checked: list[bytes] = []

    def check(key: bytes) -> bytes | None:
        checked.append(key)
        return None if key.startswith(b"!") else key.upper()

    new = count_checked(counts, lambda: [b"a", b"c", b"a", b"d", b"c"], check)
    assert new is not None
    assert sorted(new) == [b"C", b"D"]
    assert sorted(checked) == [b"c", b"d"]
    assert counts == Counter({b"a": 4, b"b": 1, b"c": 2, b"d": 1})

    checked.clear()
    assert count_checked(counts, lambda: [b"b", b"a", b"b"], check) == []
    assert checked == []
    assert counts == Counter({b"a": 5, b"b": 3, b"c": 2, b"d": 1})

    before = list(counts.items())
    assert count_checked(counts, lambda: [b"a", b"e", b"!x", b"b", b"e"], check) is None
    assert list(counts.items()) == before  # no new key left, not even with a count of 0
