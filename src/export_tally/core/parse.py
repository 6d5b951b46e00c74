"""Counts per (patient_id, event_type): the counting parser and its aggregator.

`CountingParser` is a `BlockParser` (see `blocks`: chunking, header, the csv.reader path and the
bad-row modes) that counts rows per (patient_id, event_type). A quote-free block goes through one
regex built from the header (see `plain_rows`), so matching, extracting the two key fields and
counting all happen in C; keys stay bytes and are decoded once per distinct key, at the end. The
event_time and value columns are not interpreted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from export_tally.core.aggregation import of_kind
from export_tally.core.blocks import DEFAULT_MAX_LINE_BYTES, BlockParser
from export_tally.core.csv_rows import BadRowMode
from export_tally.core.plain_rows import KEY, match_rows, row_pattern
from export_tally.core.tally import Key, Tally, merge_tallies

if TYPE_CHECKING:
    import re
    from collections.abc import Iterable

    from export_tally.core.csv_rows import Columns


def count_pattern(columns: Columns) -> re.Pattern[bytes]:
    """The regex of one plain row, capturing patient_id and event_type, in column order."""
    keys = sorted((columns.patient, columns.event_type))
    return row_pattern(columns.width, dict.fromkeys(keys, KEY), [range(k, k + 1) for k in keys])


class CountingParser(BlockParser[Tally]):
    """Counts events per (patient_id, event_type) in an export CSV fed as chunks of bytes.

    The CSV rules, the bad-row modes and the errors are `BlockParser`'s; `finish` returns a
    BodyResult whose aggregate is a Tally.
    """

    def __init__(
        self,
        *,
        on_bad_row: BadRowMode = "fail",
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    ) -> None:
        super().__init__(on_bad_row=on_bad_row, max_line_bytes=max_line_bytes)
        self._pattern: re.Pattern[bytes] | None = None
        self._swap = False  # event_type comes before patient_id
        self._raw_counts: Counter[tuple[bytes, bytes]] = Counter()  # fast path, column order
        self._text_counts: Counter[Key] = Counter()  # csv path

    def _start(self, columns: Columns) -> None:
        self._pattern = count_pattern(columns)
        self._swap = columns.event_type < columns.patient

    def _take_plain(self, block: bytes, lines: int) -> int | None:
        assert self._pattern is not None
        rows = match_rows(self._pattern, block, lines)
        if rows is None:
            return None
        self._raw_counts.update(rows)
        return len(rows)

    def _take_row(self, line_number: int, row: list[str]) -> None:
        assert self._columns is not None
        self._text_counts[row[self._columns.patient], row[self._columns.event_type]] += 1

    def _aggregate(self) -> Tally:
        counts = dict(self._text_counts)
        for (first, second), n in self._raw_counts.items():
            pair = (first.decode("utf-8"), second.decode("utf-8"))
            key = (pair[1], pair[0]) if self._swap else pair
            counts[key] = counts.get(key, 0) + n
        return Tally(counts)


@dataclass(frozen=True)
class CountAggregator:
    """Counts per (patient_id, event_type): the Aggregator of a run without `--stats`."""

    on_bad_row: BadRowMode = "fail"

    @property
    def key(self) -> str:
        return f"counts/{self.on_bad_row}"

    def new_parser(self) -> CountingParser:
        return CountingParser(on_bad_row=self.on_bad_row)

    def merge(self, aggregates: Iterable[Tally]) -> Tally:
        return merge_tallies(*of_kind(Tally, aggregates))

    def to_json(self, aggregate: Tally) -> Any:
        """[[patient_id, event_type, count], ...] sorted by key."""
        return [[p, e, n] for (p, e), n in sorted(aggregate.counts.items())]

    def from_json(self, data: Any) -> Tally:
        return Tally({(p, e): n for p, e, n in data})

    def report(self, aggregate: Tally, precision: int) -> dict[str, Any]:
        return aggregate.to_report()  # counts are exact integers: nothing to round
