"""Bytes to Stats, chunk by chunk: the parser behind `--stats`, and its aggregator.

`StatsParser` is a `BlockParser` (see `blocks`: chunking, header, the csv.reader path and the
bad-row modes) like `CountingParser`, that also reads the value and event_time columns. A row
whose value is not a decimal number or whose event_time is not an ISO 8601 time with an offset
(the rules are in `row_rules`) is a bad row, failed or skipped like any other, with its line
number. Without stats, CountingParser does not look at those columns.

The fast path takes a quote-free piece whose fields `fast_path` proved all good rows, and stays in
C per row. Each row's patient_id, event_type and value are joined into one text, `P1,heart_rate,72`
(no field holds a comma), and a Counter counts these *entries*: one fresh bytes object to hash and
compare costs less than a tuple of three. When value is the last column, it keeps its line end
(`P1,heart_rate,72\\n`), which spares a field per row; checking each new entry then ends the proof.
`_fold` turns them into exact sums, mins, maxes and anomaly counts per key once per distinct entry
(at the end, or when it holds more than `fold_at` entries, so memory stays bounded for values that
rarely repeat). A new entry is checked (non-empty keys, a decimal value) when it first enters the
Counter. The event_time column is checked in bulk and widened to a fixed-width form where byte
order is time order (see `row_rules`); the earliest and latest time per key are kept by a
`TimeBounds` (see `time_bounds`: runs of pieces in time order, read only at their ends).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from export_tally.core.aggregation import CSV, NDJSON, of_kind, unknown_format
from export_tally.core.csv.blocks import DEFAULT_MAX_LINE_BYTES, PIECE_BYTES, BlockParser
from export_tally.core.csv.fast_path import count_checked, plain_fields
from export_tally.core.csv.reader_path import BadRowMode
from export_tally.core.stats.aggregate import (
    KeyStats,
    Number,
    Stats,
    higher,
    is_anomaly,
    lower,
    merge_stats,
)
from export_tally.core.stats.row_rules import (
    VALUE_TEXT,
    entry_key,
    fixed_width_times,
    parse_instant,
    real_hours,
    value_of,
)
from export_tally.core.stats.time_bounds import RUN_BYTES, TimeBounds

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from export_tally.core.aggregation import Parser
    from export_tally.core.counts.tally import Key
    from export_tally.core.ndjson.resources import KeyMode

FOLD_AT = 25_000
"""Distinct (patient_id, event_type, value) entries held before they are folded into sums.

The exports have a few thousand (a `large` download: about 7,000); values that never repeat
would fill the Counter with one entry a row, and this bound keeps a worker's memory at a few MiB
then (about 30 MiB at 100,000)."""

_ENTRY_TEXT = b",".join
"""(patient_id, event_type, value) as one text, `P1,heart_rate,72`: no field holds a comma."""


class _Sums:
    """The value statistics of one key, added to in place while parsing."""

    __slots__ = ("anomalies", "count", "event_type", "high", "low", "sum")

    def __init__(self, event_type: str, value: Number) -> None:
        self.event_type = event_type
        self.count = 0
        self.sum: Number = 0
        self.low = self.high = value
        self.anomalies = 0

    def add(self, value: Number, times: int) -> None:
        self.count += times
        self.sum += value * times
        if value <= self.low:
            self.low = lower(self.low, value)
        if value >= self.high:
            self.high = higher(self.high, value)
        if is_anomaly(self.event_type, value):
            self.anomalies += times


class StatsParser(BlockParser[Stats]):
    """Statistics of value and event_time per (patient_id, event_type) of an export CSV.

    The CSV rules, bad-row modes and errors of `BlockParser`, plus the value and event_time
    rules of `row_rules`; `finish` returns a BodyResult whose aggregate is a Stats. `fold_at`
    bounds the distinct (patient_id, event_type, value) entries held before folding them into
    sums, and `run_bytes` the bytes of a run held before its times are noted (tests lower both).
    """

    def __init__(
        self,
        *,
        on_bad_row: BadRowMode = "fail",
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        piece_bytes: int = PIECE_BYTES,
        fold_at: int = FOLD_AT,
        run_bytes: int = RUN_BYTES,
    ) -> None:
        super().__init__(
            on_bad_row=on_bad_row, max_line_bytes=max_line_bytes, piece_bytes=piece_bytes
        )
        self._fold_at = fold_at
        # Fast path: entries counted as the fields come, each checked once, when it is new; the
        # earliest and latest times per key, told the keys of those new entries.
        self._raw_entries: Counter[bytes] = Counter()
        self._raw_times = TimeBounds(run_bytes)
        self._real_hours: set[bytes] = set()
        # csv path: text keys, times in microseconds.
        self._text_entries: Counter[tuple[str, str, str]] = Counter()
        self._text_first: dict[Key, int] = {}
        self._text_last: dict[Key, int] = {}
        self._sums: dict[Key, _Sums] = {}  # folded entries of both paths

    def _take_plain(self, block: bytes) -> int | None:
        columns = self._columns
        assert columns is not None
        # Value, when last, keeps each line end (see `fast_path`), and an entry ends with it.
        value_last = columns.value == columns.width - 1
        plain = plain_fields(block, columns.width, keep_line_ends=value_last)
        if plain is None:
            return None
        if not plain.rows:
            return 0
        times = fixed_width_times(plain.column(columns.time))
        if times is None:
            return None
        in_order = times == sorted(times)
        if not real_hours(times, in_order, self._real_hours):
            return None
        if self._raw_times.end_run_before(times, in_order):
            # Before this piece's entries count: the keys forgotten then would include its own,
            # which the run it may begin holds.
            self._fold()
        patients = plain.column(columns.patient)
        types = plain.column(columns.event_type)
        values = plain.column(columns.value)
        entries = self._raw_entries
        keys = count_checked(
            entries,
            lambda: map(_ENTRY_TEXT, zip(patients, types, values, strict=True)),
            partial(entry_key, line_end=value_last),
        )
        if keys is None:
            return None
        self._raw_times.want(keys)
        forgot = self._raw_times.add(block, columns, (patients, types, times), in_order)
        if forgot or len(entries) + len(self._text_entries) > self._fold_at:
            self._fold()
        return plain.rows

    def _take_row(self, line_number: int, row: list[str]) -> None:
        assert self._columns is not None
        columns = self._columns
        micros = parse_instant(row[columns.time])
        if micros is None:
            self._bad_rows.reject(
                line_number,
                f"event_time {_quoted_excerpt(row[columns.time])} is not an ISO 8601 time with a UTC offset",
            )
            return
        value = row[columns.value]
        if VALUE_TEXT.fullmatch(value) is None:
            self._bad_rows.reject(
                line_number, f"value {_quoted_excerpt(value)} is not a decimal number"
            )
            return
        key = (row[columns.patient], row[columns.event_type])
        self._text_entries[key[0], key[1], value] += 1
        first, last = self._text_first, self._text_last
        if key not in first or micros < first[key]:
            first[key] = micros
        if key not in last or last[key] < micros:
            last[key] = micros
        if len(self._raw_entries) + len(self._text_entries) > self._fold_at:
            self._fold()

    def _fold(self) -> None:
        """Add the held (patient_id, event_type, value) entries to the sums, and drop them."""
        numbers: dict[str, Number] = {}
        sums_of = self._sums
        for entries in (self._raw_entries_as_text(), self._text_entries_by_key()):
            for key, text, times in entries:
                value = numbers.get(text)
                if value is None:
                    value = numbers[text] = value_of(text)
                sums = sums_of.get(key)
                if sums is None:
                    sums = sums_of[key] = _Sums(key[1], value)
                sums.add(value, times)
        self._raw_entries.clear()
        self._text_entries.clear()

    def _raw_entries_as_text(self) -> Iterator[tuple[Key, str, int]]:
        keys: dict[bytes, Key] = {}  # each key decoded once
        for entry, times in self._raw_entries.items():
            raw_key, _, value = entry.removesuffix(b"\n").rpartition(b",")
            key = keys.get(raw_key)
            if key is None:
                patient_id, event_type = raw_key.decode().split(",")
                key = keys[raw_key] = (patient_id, event_type)
            yield key, value.decode(), times

    def _text_entries_by_key(self) -> Iterator[tuple[Key, str, int]]:
        for (patient_id, event_type, value), times in self._text_entries.items():
            yield (patient_id, event_type), value, times

    def _aggregate(self) -> Stats:
        self._raw_times.end_run()
        self._fold()
        first, last = dict(self._text_first), dict(self._text_last)
        self._raw_times.merge_into(first, last)
        return Stats(
            {
                key: KeyStats(s.count, s.sum, s.low, s.high, s.anomalies, first[key], last[key])
                for key, s in self._sums.items()
            }
        )


@dataclass(frozen=True)
class StatsAggregator:
    """Statistics per (patient_id, event_type): the Aggregator of a run with `--stats`.

    A CSV file is read by `StatsParser`; an NDJSON file by the NDJSON family's statistics
    parser (Observations' values and times), keyed by `key_mode` (code or text).
    """

    on_bad_row: BadRowMode = "fail"
    key_mode: KeyMode = "code"

    @property
    def key(self) -> str:
        mode = "" if self.key_mode == "code" else f"/{self.key_mode}"  # CSV's key as before
        return f"stats/{self.on_bad_row}{mode}"

    def new_parser(self, file_format: str = CSV) -> Parser[Stats]:
        if file_format == CSV:
            return StatsParser(on_bad_row=self.on_bad_row)
        if file_format == NDJSON:
            from export_tally.core.ndjson.statistics import NdjsonStatsParser

            return NdjsonStatsParser(self.key_mode, self.on_bad_row)
        raise unknown_format(file_format)

    def merge(self, aggregates: Iterable[Stats]) -> Stats:
        return merge_stats(*of_kind(Stats, aggregates))

    def to_json(self, aggregate: Stats) -> Any:
        return aggregate.to_json()

    def from_json(self, data: Any) -> Stats:
        return Stats.from_json(data)

    def report(self, aggregate: Stats, precision: int) -> dict[str, Any]:
        return aggregate.to_report(precision)


def _quoted_excerpt(field: str) -> str:
    """A field for an error message: quoted, and cut short if long."""
    return repr(field if len(field) <= 40 else field[:37] + "...")
