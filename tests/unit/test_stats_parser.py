"""The stats parser against edge cases, checked against the naive reference report."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta, timezone

import pytest

from export_tally.core.aggregation import BodyResult
from export_tally.core.counts.parser import CountingParser
from export_tally.core.stats.aggregate import Stats
from export_tally.core.stats.parser import StatsParser
from export_tally.errors import BadRowError, CsvFormatError
from tests.support import feeding
from tests.support import stats_reference as reference
from tests.support.feeding import HEADER, one_byte_at_a_time

T7 = "2025-08-26T00:00:07"


def feed_all(chunks: list[bytes], **options: object) -> BodyResult[Stats]:
    return feeding.feed_all(StatsParser(**options), chunks)  # type: ignore[arg-type]


def time_text(micros: int, offset_hours: int | None = None) -> str:
    """As `isoformat` writes it: `Z` for UTC, no `.ffffff` when the microseconds are zero."""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    if offset_hours is None:
        return moment.isoformat().replace("+00:00", "Z")
    return moment.astimezone(timezone(timedelta(hours=offset_hours))).isoformat()


def assert_matches_reference(body: bytes, result: BodyResult[Stats]) -> None:
    events = reference.events_of(body)
    assert result.rows == len(events)
    assert (result.skipped, result.skipped_lines) == (0, ())
    for precision in (1, 6, 0):
        assert result.aggregate.to_report(precision) == reference.report(events, precision)


def rows(*lines: str) -> bytes:
    return HEADER + "".join(line + "\n" for line in lines).encode()


GOOD = [
    pytest.param(b"", id="empty-body"),
    pytest.param(HEADER, id="header-only"),
    pytest.param(b"\xef\xbb\xbf", id="bom-only"),
    pytest.param(rows(f"P1,{T7}.000001Z,heart_rate,72", f"P1,{T7}.5Z,heart_rate,75"), id="short-fractions-read-by-fromisoformat"),
    pytest.param(rows(f"P1,{T7}Z,heart_rate,72", f"P2,{T7}.250000Z,spo2,99", f"P1,{T7}.500000Z,heart_rate,190"), id="plain"),
    pytest.param(rows(f"P1,{T7}Z,heart_rate,72").replace(b"\n", b"\r\n"), id="crlf"),
    pytest.param(rows(f"P1,{T7}Z,heart_rate,72", f"P1,{T7}.100000Z,heart_rate,73").rstrip(), id="no-final-newline"),
    pytest.param(rows(f'"P,1",{T7}Z,"heart_rate","72"', f"P1,{T7}.100000Z,heart_rate,1"), id="quoted-fields"),
    pytest.param(
        b"value,event_type,event_time,patient_id\r\n72,heart_rate,2025-08-26T00:00:07Z,P1\r\n"
        b"80,heart_rate,2025-08-26T00:00:09Z,P1\r\n",
        id="key-last-crlf",
    ),
    pytest.param(
        b"event_time,value,patient_id,event_type,note\n2025-08-26T00:00:07Z,72,P1,spo2,\n"
        b"2025-08-26T00:00:08Z,73,P1,spo2,x\n",
        id="columns-in-another-order-extra-last",
    ),
    pytest.param(rows("", f"P1,{T7}Z,heart_rate,72", "", f"P1,{T7}Z,heart_rate,72", ""), id="blank-lines-and-ties"),
    pytest.param(
        rows(f"P1,{T7}Z,x,72.5", f"P1,{T7}.100000Z,x,-3", f"P1,{T7}.200000Z,x,+4", f"P1,{T7}.300000Z,x,007", f"P1,{T7}.400000Z,x,-0.25"),
        id="decimals-negatives-signs-zeros",
    ),
    pytest.param(
        rows(f"P1,{T7}Z,spo2,72.0", f"P1,{T7}.100000Z,spo2,72", f"P1,{T7}.200000Z,spo2,100.00", f"P1,{T7}.300000Z,spo2,100"),
        id="equal-values-written-two-ways",
    ),
    pytest.param(
        rows("P1,2025-08-26T00:00:06.999999Z,x,1", f"P1,{T7}Z,x,1", f"P1,{T7}.000001Z,x,1", f"P1,{T7}.000002Z,x,1"),
        id="no-fraction-between-fractions",
    ),
    pytest.param(
        rows(f"P1,{T7}.500000Z,x,1", f"P1,{T7}Z,x,1", f"P1,{T7}.600000Z,x,1"),
        id="no-fraction-after-a-later-fraction",  # raw text order would call this in order
    ),
    pytest.param(
        rows(f"P1,{T7}.900000Z,x,1", f"P2,{T7}.100000Z,x,2", f"P1,{T7}.200000Z,x,3", "P2,2025-08-25T00:00:00Z,x,4"),
        id="times-going-backwards",
    ),
    pytest.param(
        rows(f"P1,{T7}.500000Z,x,1", f"P1,{T7}.400000Z,y,2"),
        id="a-new-key-going-back-ends-a-run",  # which must not forget that key
    ),
    pytest.param(
        rows(f"P1,{T7}+00:00,x,1", "P1,2025-08-26T02:00:08+02:00,x,2", f"P1,{T7}.500000-01:00,x,3"),
        id="utc-offsets",
    ),
    pytest.param(
        rows("P1,2025-08-26T23:59:59.5Z,x,1", "P1,2025-08-27T00:00:00Z,x,2", "P2,2025-08-28T12:00:00Z,x,3",
             "P1,2025-09-01T00:00:00.000001Z,x,4", "P1,2028-02-29T00:00:00Z,x,5"),
        id="several-days-in-a-block",
    ),
    pytest.param(
        rows(*(f"P{i % 3},{time_text(1_756_166_400_000_000 + i * 999_999)},{t},{i % 250}"
               for i in range(300) for t in ("heart_rate", "spo2", "bp_sys", "bp_dia", "temp"))),
        id="every-event-type-and-anomalies",
    ),
    pytest.param(rows(f"P\u00e9,{T7}Z,h\u2764,1", f"P\u00e9,{T7}.100000Z,h\u2764,2"), id="utf8-keys"),
]  # fmt: skip


@pytest.mark.parametrize("body", GOOD)
def test_matches_the_reference(body: bytes) -> None:
    result = feed_all([body])
    assert_matches_reference(body, result)
    assert feed_all(one_byte_at_a_time(body)) == result
    assert feed_all([body], fold_at=1) == result
    assert feed_all([body], piece_bytes=60) == result  # runs of pieces, broken where time goes back
    assert feed_all([body], piece_bytes=60, run_bytes=1) == result  # a run per piece
    assert feed_all([body], piece_bytes=60, run_bytes=150) == result  # ends read again as bytes


T = f"{T7}Z"
BAD_ROWS = [
    pytest.param(rows(f"P1,{T},x,"), 2, "value '' is not a decimal number", id="empty-value"),
    pytest.param(rows(f"P1,{T},x,1", f"P1,{T},x,abc"), 3, "value 'abc' is not a decimal number", id="word"),
    pytest.param(rows(f"P1,{T},x,1e3"), 2, "value '1e3' is not", id="exponent"),
    pytest.param(rows(f"P1,{T},x, 72"), 2, "value ' 72' is not", id="space"),
    pytest.param(rows(f"P1,{T},x,72."), 2, "value '72.' is not", id="trailing-dot"),
    pytest.param(rows(f"P1,{T},x,.5"), 2, "value '.5' is not", id="leading-dot"),
    pytest.param(rows(f"P1,{T},x,NaN"), 2, "value 'NaN' is not", id="nan"),
    pytest.param(rows(f"P1,{T},x,\u0663"), 2, "value '\u0663' is not", id="arabic-digit"),
    pytest.param(rows(f"P1,{T},x,{'9' * 50}x"), 2, f"value '{'9' * 37}...' is not", id="long-value-cut-short"),
    pytest.param(rows("P1,,x,1"), 2, "event_time '' is not an ISO 8601 time with a UTC offset", id="empty-time"),
    pytest.param(rows("P1,yesterday,x,1"), 2, "event_time 'yesterday' is not", id="word-time"),
    pytest.param(rows(f"P1,{T7},x,1"), 2, f"event_time '{T7}' is not", id="no-offset"),
    pytest.param(rows(f"P1,{T7}X,x,1"), 2, f"event_time '{T7}X' is not", id="narrow-time-without-z"),
    pytest.param(rows("P1,2025-08-26,x,1"), 2, "event_time '2025-08-26' is not", id="date-only"),
    pytest.param(rows(f"P1,{T},x,1", "P1,2025-02-30T00:00:00Z,x,1"), 3, "event_time '2025-02-30", id="no-such-day"),
    pytest.param(rows("P1,2025-02-29T00:00:00Z,x,1"), 2, "event_time '2025-02-29", id="not-a-leap-year"),
    pytest.param(rows("P1,0000-01-01T00:00:00Z,x,1"), 2, "event_time '0000-01-01", id="year-zero"),
    pytest.param(rows("P1,2025-13-01T00:00:00Z,x,1"), 2, "event_time '2025-13-01", id="month-13"),
    pytest.param(rows("P1,2025-08-26T24:00:00Z,x,1"), 2, "event_time '2025-08-26T24", id="hour-24"),
    pytest.param(rows("P1,2025-08-26T00:60:00Z,x,1"), 2, "event_time '2025-08-26T00:60", id="minute-60"),
    pytest.param(rows("P1,2025-08-26T23:59:60Z,x,1"), 2, "event_time '2025-08-26T23:59:60", id="leap-second"),
    pytest.param(rows(f'P1,"{T}",x,1', "P1,later,x,2"), 3, "event_time 'later' is not", id="in-a-quoted-block"),
    pytest.param(rows(f"P1,{T},x,1", f"P1,{T},x"), 3, "expected 4 fields, found 3", id="field-count-still-checked"),
    pytest.param(rows(f"P1,{T},x,1", f"P1,{T},,1"), 3, "empty event_type", id="empty-key-still-checked"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "line", "reason"), BAD_ROWS)
def test_bad_row_fails_with_line_number(body: bytes, line: int, reason: str) -> None:
    with pytest.raises(BadRowError) as caught:
        feed_all([body])
    assert caught.value.line_number == line
    assert caught.value.reason.startswith(reason)
    assert isinstance(caught.value, CsvFormatError)


@pytest.mark.parametrize(("body", "line", "reason"), BAD_ROWS)
def test_bad_row_is_skipped_and_left_out(body: bytes, line: int, reason: str) -> None:
    result = feed_all([body], on_bad_row="skip")
    assert (result.skipped, result.skipped_lines) == (1, (line,))
    lines = body.split(b"\n")
    good = b"\n".join(lines[: line - 1] + lines[line:])
    assert result.rows == len(reference.events_of(good)) + 1
    assert result.aggregate.to_report() == reference.report(reference.events_of(good))


def test_without_stats_the_same_rows_are_fine() -> None:
    counting = CountingParser()
    counting.feed(rows("P1,yesterday,x,abc"))
    assert counting.finish().aggregate.total == 1


def test_skip_keeps_counting_after_bad_rows_in_both_paths() -> None:
    body = rows(*(f"P1,{T7}.{i:06d}Z,x,{'bad' if i % 3 == 0 else i}" for i in range(1, 30)))
    for chunks in ([body], one_byte_at_a_time(body)):
        result = feed_all(chunks, on_bad_row="skip")
        assert (result.rows, result.skipped, result.skipped_lines) == (29, 9, (4, 7, 10, 13, 16))
        assert result.aggregate.total == 20


def test_a_big_block_goes_in_pieces_and_keeps_line_numbers() -> None:
    good = [
        f"P{i % 5},{time_text(10**15 + i * 10**6)},heart_rate,{30 + i % 170}" for i in range(9000)
    ]
    lines = [*good[:6000], "P1,2025-08-26T00:00:07Z,heart_rate,oops", *good[6000:]]
    body = rows(*lines)
    assert len(body) > 4 * 64 * 1024
    with pytest.raises(BadRowError, match=r"^bad row at line 6002: value 'oops'"):
        feed_all([body])
    result = feed_all([body], on_bad_row="skip")
    assert (result.rows, result.skipped, result.skipped_lines) == (9001, 1, (6002,))
    assert result.aggregate.to_report(6) == reference.report(reference.events_of(rows(*good)), 6)
    assert result == feed_all(
        [body[i : i + 100_000] for i in range(0, len(body), 100_000)], on_bad_row="skip"
    )


def test_plain_blocks_take_the_fast_path() -> None:
    parser = StatsParser()
    parser.feed(rows(*(f"P{i % 4},{time_text(10**15 + i * 10**6)},x,{i}" for i in range(200))))
    assert parser.plain_rows == parser.rows == 200
    parser.feed(
        rows(f"P1,{T7}.900000Z,x,1000", f"P1,{T7}.100000Z,x,1001")[len(HEADER) :]
    )  # out of order
    assert parser.plain_rows == parser.rows == 202


def takes_fast_path(names: str, block: bytes) -> bool:
    """Whether a good block was taken whole by the fast path (else csv.reader took it)."""
    parser = StatsParser(on_bad_row="skip")
    parser.feed(names.encode() + b"\n" + block)
    return parser.plain_rows == parser.rows > 0


STANDARD = "patient_id,event_time,event_type,value"
FAST_PATH = [
    pytest.param(STANDARD, f"P1,{T},x,1\r\nP2,{T7}.123456Z,y,-2.5\n", True, id="lf-and-crlf"),
    pytest.param(STANDARD, f"P1,{T},x,1,2\n", False, id="extra-field"),
    pytest.param(STANDARD, f"P1,{T},x\n", False, id="missing-field"),
    pytest.param(STANDARD, f"P1,{T},x\nP1,{T},x,1,2\n", False, id="field-counts-compensating"),
    pytest.param(STANDARD, f"P1,{T},x,1\nP1,{T},x\n,2\n", False, id="line-end-not-after-value"),
    pytest.param(STANDARD, f"P1,{T},x,\n", False, id="empty-value"),
    pytest.param(STANDARD, f"P1,{T},x,1\nP1,{T},x,1e3\n", False, id="bad-value-after-good"),
    pytest.param(STANDARD, f"P1,{T7}.1234567Z,x,1\n", False, id="seven-digit-fraction"),
    pytest.param(STANDARD, f"P1,{T7}.12345Z,x,1\n", False, id="five-digit-fraction"),
    pytest.param(STANDARD, f"P1,{T7}X,x,1\n", False, id="narrow-time-without-z"),
    pytest.param(STANDARD, f"P1,{T7}.12345Z,x,1\nP1,{T7}.1234567Z,x,1\n", False, id="lengths-that-add-up"),
    pytest.param(STANDARD, f"P1,{T7}+00:00,x,1\n", False, id="offset-not-z"),
    pytest.param(STANDARD, f"P1,{T7}.123456Z,x,1\nP1,2025-08-26 00:00:07.123456Z,x,1\n", False, id="space-not-t"),
    pytest.param(STANDARD, "P1,2025-08-26T23:59:59.999999Z,x,1\nP1,2025-08-26T24:00:00Z,x,1\n", False, id="hour-24"),
    pytest.param("event_time,patient_id,event_type,value", f"xx{T},P1,x,1\n", False, id="match-must-start-a-line"),
    pytest.param("event_time,patient_id,event_type,value", f"{T},P1,x,1\n", True, id="time-first"),
    pytest.param(STANDARD + ",note", f"P1,{T},x,1,a,b\n", False, id="extra-last-field-with-comma"),
    pytest.param(STANDARD + ",note", f"P1,{T},x,1,a\r\n", True, id="extra-last-field"),
    pytest.param("value,event_time,patient_id,event_type", f"1,{T},P1,x\r\n", True, id="key-last-crlf"),
    pytest.param("value,event_time,patient_id,event_type", f"1,{T},P1,x,y\r\n", False, id="key-last-extra"),
    pytest.param("value,event_type,patient_id,event_time", f"1,x,P1,{T}\r\n", True, id="time-last-crlf"),
    pytest.param("event_type,value,note,event_time,patient_id", f"x,1,,{T},P1\n", True, id="runs-split-by-note"),
]  # fmt: skip


@pytest.mark.parametrize(("names", "block", "fast"), FAST_PATH)
def test_fast_path_takes_only_blocks_it_can_prove_good(names: str, block: str, fast: bool) -> None:
    assert takes_fast_path(names, block.encode()) is fast
    body = names.encode() + b"\n" + block.encode()
    assert feed_all([body], on_bad_row="skip") == feed_all(
        one_byte_at_a_time(body), on_bad_row="skip"
    )


def test_result_pickles_small() -> None:
    body = rows(
        *(
            f"P{i % 6},{time_text(10**15 + i * 10**6)},heart_rate,{40 + i % 150}"
            for i in range(5000)
        )
    )
    result = feed_all([body])
    data = pickle.dumps(result)
    assert pickle.loads(data) == result
    assert len(data) < 1000
    assert isinstance(result.aggregate, Stats)


@pytest.mark.parametrize(
    "times",
    [
        pytest.param(["06.999999Z", "07Z", "07.000001Z"], id="in-order"),
        pytest.param(["07.500000Z", "07Z", "07.600000Z"], id="raw-text-order-would-lie"),
        pytest.param(["07.000001Z", "07Z", "06.999999Z"], id="backwards"),
    ],
)
def test_fast_path_compares_times_as_instants(times: list[str]) -> None:
    body = rows(*(f"P1,2025-08-26T00:00:{t},x,1" for t in times))
    parser = StatsParser()
    parser.feed(body)
    assert parser.plain_rows == parser.rows  # all of it went the fast way
    assert_matches_reference(body, parser.finish())
