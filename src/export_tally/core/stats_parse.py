"""Bytes to Stats, chunk by chunk: the parser behind `--stats`, and its aggregator.

`StatsParser` is a `BlockParser` (see `blocks`: chunking, header, the csv.reader path and the
bad-row modes) like `CountingParser`, that also reads the value and event_time columns. A row
whose value is not a decimal number or whose event_time is not an ISO 8601 time with an offset
(the rules are in `stats_rows`) is a bad row, failed or skipped like any other, with its line
number. Without stats, CountingParser does not look at those columns.

The fast path (see `stats_rows`) takes a quote-free block that `plain_rows` proved all good
rows, and stays in C per row: a Counter of entries (patient_id, event_type and value bytes),
which `_fold` turns into exact sums, mins, maxes and anomaly counts per key once per distinct
entry (at the end, or when it holds more than `fold_at` entries, so memory stays bounded for
values that rarely repeat); and the list of event times, in a fixed-width form where byte order
is time order.

Only the earliest and latest time per key matter (see `stats` on latency). When a block's times
are in order, which the exports promise and one C-level comparison checks, those are the first
and last occurrence of each key: a short scan from each end finds them. When they are not, every
row is looked at; the answer is exact either way, so rows out of order and downloads that
overlap in time are not errors.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import islice
from operator import le
from typing import TYPE_CHECKING, Any

from export_tally.core.aggregation import of_kind
from export_tally.core.blocks import DEFAULT_MAX_LINE_BYTES, BlockParser
from export_tally.core.csv_rows import BadRowMode
from export_tally.core.plain_rows import match_rows
from export_tally.core.stats import (
    KeyStats,
    Number,
    Stats,
    higher,
    is_anomaly,
    lower,
    merge_stats,
)
from export_tally.core.stats_rows import (
    VALUE_TEXT,
    RowLayout,
    fixed_width_times,
    instant_of,
    is_value,
    parse_instant,
    real_hours,
    value_of,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from export_tally.core.csv_rows import Columns
    from export_tally.core.tally import Key

FOLD_AT = 100_000
"""Distinct (patient_id, event_type, value) entries held before they are folded into sums."""

PIECE_BYTES = 64 * 1024
PIECE_BYTES_PER_KEY = 4 * 1024

RawKey = tuple[bytes, bytes]


class _Sums:
    """The value statistics of one key, added to in place while parsing."""

    __slots__ = ("anomalies", "count", "high", "low", "sum")

    def __init__(self, value: Number) -> None:
        self.count = 0
        self.sum: Number = 0
        self.low = self.high = value
        self.anomalies = 0

    def add(self, event_type: str, value: Number, times: int) -> None:
        self.count += times
        self.sum += value * times
        self.low = lower(self.low, value)
        self.high = higher(self.high, value)
        if is_anomaly(event_type, value):
            self.anomalies += times


class StatsParser(BlockParser[Stats]):
    """Statistics of value and event_time per (patient_id, event_type) of an export CSV.

    The CSV rules, bad-row modes and errors of `BlockParser`, plus the value and event_time
    rules of `stats_rows`; `finish` returns a BodyResult whose aggregate is a Stats. `fold_at`
    bounds the distinct (patient_id, event_type, value) entries held before folding them into
    sums.
    """

    def __init__(
        self,
        *,
        on_bad_row: BadRowMode = "fail",
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        fold_at: int = FOLD_AT,
    ) -> None:
        super().__init__(on_bad_row=on_bad_row, max_line_bytes=max_line_bytes)
        self._fold_at = fold_at
        self._layout: RowLayout | None = None
        # Fast path: entries counted as the regex gives them; for each, its key and value.
        self._raw_entries: Counter[Any] = Counter()
        self._entry_info: dict[Any, tuple[RawKey, bytes]] = {}
        # Earliest and latest times per key, fixed-width text (byte order is time order).
        self._raw_first: dict[RawKey, bytes] = {}
        self._raw_last: dict[RawKey, bytes] = {}
        self._real_hours: set[bytes] = set()
        # csv path: text keys, times in microseconds.
        self._text_entries: Counter[tuple[str, str, str]] = Counter()
        self._text_first: dict[Key, int] = {}
        self._text_last: dict[Key, int] = {}
        self._sums: dict[Key, _Sums] = {}  # folded entries of both paths

    def _start(self, columns: Columns) -> None:
        self._layout = RowLayout.from_columns(columns)

    def _plain_piece_bytes(self) -> int:
        # Pieces of 64 KiB (about 1,600 rows) ran about 5% faster than 256 KiB blocks. But the
        # scan for each key's last time reads about K ln K rows a piece for K keys, so pieces
        # grow with the keys seen.
        return max(PIECE_BYTES, PIECE_BYTES_PER_KEY * len(self._raw_last))

    def _take_plain(self, block: bytes, lines: int) -> int | None:
        layout = self._layout
        assert layout is not None
        rows = match_rows(layout.plain_row, block, lines)
        if rows is None:
            return None
        if not rows:
            return 0
        times = fixed_width_times(list(map(layout.time_of, rows)))
        if times is None:
            return None
        in_order = all(map(le, times, times[1:]))
        if not real_hours(times, in_order, self._real_hours):
            return None
        entries = self._raw_entries
        known = len(entries)
        entries.update(map(layout.entry_of, rows))
        # Entries new to the Counter sit at its end; every other one was checked before.
        fresh = list(islice(reversed(entries), len(entries) - known))
        if not self._check_entries(fresh):
            entries.subtract(map(layout.entry_of, rows))
            for entry in fresh:
                del entries[entry]
                self._entry_info.pop(entry, None)
            return None
        if in_order:
            new_keys = {self._entry_info[entry][0] for entry in fresh}
            self._note_ordered_times(rows, times, new_keys)
        else:
            self._note_times(rows, times)
        if len(entries) + len(self._text_entries) > self._fold_at:
            self._fold()
        return len(rows)

    def _check_entries(self, fresh: list[Any]) -> bool:
        """Record the key and value of entries new to the Counter; False if a value is bad."""
        layout, info = self._layout, self._entry_info
        assert layout is not None
        for entry in fresh:
            fields = layout.fields_of(entry)
            value = fields[layout.value]
            if not is_value(value):
                return False
            info[entry] = ((fields[layout.patient], fields[layout.event_type]), value)
        return True

    def _note_ordered_times(self, rows: list[Any], times: list[bytes], new: set[RawKey]) -> None:
        """Update the earliest and latest times per key from a block in time order."""
        assert self._layout is not None
        entry_of, info = self._layout.entry_of, self._entry_info
        first, last = self._raw_first, self._raw_last
        # Latest: the last occurrence of each key. The block's keys are among `wanted`; a key
        # missing from the block makes this scan go through it all, which is still exact.
        wanted = len(last.keys() | new)
        found: dict[RawKey, bytes] = {}
        for i in range(len(rows) - 1, -1, -1):
            key = info[entry_of(rows[i])][0]
            if key not in found:
                found[key] = times[i]
                if len(found) == wanted:
                    break
        for key, time in found.items():
            if key not in last or last[key] < time:
                last[key] = time
        # Earliest: only keys this block could move back need their first occurrence.
        start = times[0]
        need = {key for key in found if key not in first or start < first[key]}
        for i, row in enumerate(rows):
            if not need:
                break
            key = info[entry_of(row)][0]
            if key in need:
                need.discard(key)
                if key not in first or times[i] < first[key]:
                    first[key] = times[i]

    def _note_times(self, rows: list[Any], times: list[bytes]) -> None:
        """Update the earliest and latest times per key from a block in any order."""
        assert self._layout is not None
        entry_of, info = self._layout.entry_of, self._entry_info
        first, last = self._raw_first, self._raw_last
        for row, time in zip(rows, times, strict=True):
            key = info[entry_of(row)][0]
            if key not in first or time < first[key]:
                first[key] = time
            if key not in last or last[key] < time:
                last[key] = time

    def _take_row(self, line_number: int, row: list[str]) -> None:
        assert self._columns is not None
        columns = self._columns
        micros = parse_instant(row[columns.time])
        if micros is None:
            self._bad_rows.reject(
                line_number,
                f"event_time {_shown(row[columns.time])} is not an ISO 8601 time with a UTC offset",
            )
            return
        value = row[columns.value]
        if VALUE_TEXT.fullmatch(value) is None:
            self._bad_rows.reject(line_number, f"value {_shown(value)} is not a decimal number")
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
        for entries in (self._raw_entries_as_text(), self._text_entries.items()):
            for (patient_id, event_type, text), times in entries:
                value = numbers.get(text)
                if value is None:
                    value = numbers[text] = value_of(text)
                sums = self._sums.get((patient_id, event_type))
                if sums is None:
                    sums = self._sums[patient_id, event_type] = _Sums(value)
                sums.add(event_type, value, times)
        self._raw_entries.clear()
        self._entry_info.clear()
        self._text_entries.clear()

    def _raw_entries_as_text(self) -> Iterator[tuple[tuple[str, str, str], int]]:
        for entry, n in self._raw_entries.items():
            (patient_id, event_type), value = self._entry_info[entry]
            yield (patient_id.decode(), event_type.decode(), value.decode()), n

    def _aggregate(self) -> Stats:
        self._fold()
        first, last = dict(self._text_first), dict(self._text_last)
        for (patient_id, event_type), time in self._raw_first.items():
            key = (patient_id.decode(), event_type.decode())
            micros = instant_of(time)
            first[key] = min(first.get(key, micros), micros)
        for (patient_id, event_type), time in self._raw_last.items():
            key = (patient_id.decode(), event_type.decode())
            micros = instant_of(time)
            last[key] = max(last.get(key, micros), micros)
        return Stats(
            {
                key: KeyStats(s.count, s.sum, s.low, s.high, s.anomalies, first[key], last[key])
                for key, s in self._sums.items()
            }
        )


@dataclass(frozen=True)
class StatsAggregator:
    """Statistics per (patient_id, event_type): the Aggregator of a run with `--stats`."""

    on_bad_row: BadRowMode = "fail"

    @property
    def key(self) -> str:
        return f"stats/{self.on_bad_row}"

    def new_parser(self) -> StatsParser:
        return StatsParser(on_bad_row=self.on_bad_row)

    def merge(self, aggregates: Iterable[Stats]) -> Stats:
        return merge_stats(*of_kind(Stats, aggregates))

    def to_json(self, aggregate: Stats) -> Any:
        return aggregate.to_json()

    def from_json(self, data: Any) -> Stats:
        return Stats.from_json(data)

    def report(self, aggregate: Stats, precision: int) -> dict[str, Any]:
        return aggregate.to_report(precision)


def _shown(field: str) -> str:
    """A field for an error message: quoted, and cut short if long."""
    return repr(field if len(field) <= 40 else field[:37] + "...")
