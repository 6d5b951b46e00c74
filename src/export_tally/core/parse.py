"""Bytes to a Tally, chunk by chunk: an incremental counter for the export CSV.

`CountingParser` is a `RecordParser` (see `records`, which cuts chunks into blocks of whole
records and owns the header, the bad-row modes and the csv.reader path) that counts rows per
(patient_id, event_type). A block without a `"` byte goes through one regex built from the
header, so matching, extracting the two key fields and counting all happen in C. The block is
accepted only when the counts of matches, newlines and commas agree, which proves every line is
a good row (see `_Layout.match_plain`); keys stay bytes and are decoded once per distinct key,
at the end. Without stats the event_time and value columns are not interpreted.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from export_tally.core.records import (
    DEFAULT_MAX_LINE_BYTES,
    REQUIRED_COLUMNS,
    SKIPPED_LINES_KEPT,
    BadRowError,
    BadRowMode,
    Columns,
    RecordParser,
    is_plain_text,
)
from export_tally.core.tally import Key, Tally

__all__ = [
    "DEFAULT_MAX_LINE_BYTES",
    "REQUIRED_COLUMNS",
    "SKIPPED_LINES_KEPT",
    "BadRowError",
    "BadRowMode",
    "CountingParser",
    "ParseResult",
    "parse_bytes",
]


@dataclass(frozen=True, slots=True)
class ParseResult:
    """What one body counted to.

    `rows` counts every data row, skipped ones included (so it can be checked against the row
    count the server announces); `skipped_lines` holds the first few skipped line numbers.
    """

    tally: Tally
    rows: int
    skipped: int
    skipped_lines: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class _Layout:
    """Where the key columns are, and the regex that matches one plain (unquoted) row."""

    width: int
    patient_index: int
    type_index: int
    plain_row: re.Pattern[bytes]

    @classmethod
    def from_header(cls, names: list[str]) -> _Layout:
        """Raises CsvFormatError when a required column is missing or repeated."""
        columns = Columns.from_header(names)
        keys = (columns.patient, columns.event_type)
        last = columns.width - 1
        # Single negated characters ([^,] and [^\n]) run in sre's fastest loop. They let a field
        # run into the next line or a last field swallow commas, but match_plain's counts reject
        # any block where that happened.
        fields = [
            (rb"([^\r\n]+)\r?" if k == last else rb"([^,]+)")
            if k in keys
            else (rb"[^\n]*" if k == last else rb"[^,]*")
            for k in range(columns.width)
        ]
        return cls(columns.width, *keys, re.compile(b",".join(fields) + b"\n"))

    def match_plain(self, block: bytes, lines: int) -> list[tuple[bytes, bytes]] | None:
        """The key fields of every row of a quote-free block, or None if any line is not a row.

        The groups come in column order. Each match ends with its own newline, and the search
        restarts where the previous match ended, so one match per line (matches == newlines)
        with exactly width-1 commas each (commas == (width-1) * newlines) means every line is
        a whole row with the right field count and non-empty keys.
        """
        if block.count(b",") != (self.width - 1) * lines:
            return None
        if not is_plain_text(block):
            return None
        rows: list[tuple[bytes, bytes]] = self.plain_row.findall(block)
        return rows if len(rows) == lines else None


class CountingParser(RecordParser):
    """Counts events per (patient_id, event_type) in an export CSV fed as chunks of bytes.

    The header (line 1) names the columns; `patient_id`, `event_time`, `event_type` and `value`
    must be there, in any order, among any others. Each data row must have the header's field
    count, a non-empty patient_id and event_type, and valid UTF-8. A bad row raises BadRowError
    with `on_bad_row="fail"`; with "skip" it is left out of the tally but still counted in
    `rows`. Blank lines are not rows. An empty body means zero rows.

    `feed` and `finish` raise CsvFormatError for a bad header, a bad row (in "fail" mode), more
    than `max_line_bytes` bytes without a line end outside quotes (checked on what is buffered
    between chunks, so memory stays bounded), or a quoted field still open at the end. After an
    error the parser is spent.

    Known limit: csv.reader refuses a field longer than `csv.field_size_limit()` (128 KiB unless
    raised), so such a field makes its row bad when its block needs csv.reader, while the fast
    path accepts it. Changing that limit is process-wide, so it is left to the application.
    """

    def __init__(
        self,
        *,
        on_bad_row: BadRowMode = "fail",
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    ) -> None:
        super().__init__(on_bad_row=on_bad_row, max_line_bytes=max_line_bytes)
        self._layout: _Layout | None = None
        self._raw_counts: Counter[tuple[bytes, bytes]] = Counter()  # fast path, column order
        self._text_counts: Counter[Key] = Counter()  # csv path

    def finish(self) -> ParseResult:
        """Count the last record (a final newline is optional) and return the result."""
        self._finish_records()
        return ParseResult(self._tally(), self._rows, self._skipped, tuple(self._skipped_lines))

    def _start(self, columns: Columns, names: list[str]) -> None:
        self._layout = _Layout.from_header(names)

    def _take_plain(self, block: bytes, lines: int) -> int | None:
        assert self._layout is not None
        rows = self._layout.match_plain(block, lines)
        if rows is None:
            return None
        self._raw_counts.update(rows)
        return len(rows)

    def _take_row(self, line_number: int, row: list[str]) -> None:
        assert self._columns is not None
        self._text_counts[row[self._columns.patient], row[self._columns.event_type]] += 1

    def _tally(self) -> Tally:
        counts = dict(self._text_counts)
        swap = self._layout is not None and self._layout.type_index < self._layout.patient_index
        for (first, second), n in self._raw_counts.items():
            pair = (first.decode("utf-8"), second.decode("utf-8"))
            key = (pair[1], pair[0]) if swap else pair
            counts[key] = counts.get(key, 0) + n
        return Tally(counts)


def parse_bytes(
    body: bytes,
    *,
    on_bad_row: BadRowMode = "fail",
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> ParseResult:
    """Count a whole body at once; the same as feeding it in one chunk."""
    parser = CountingParser(on_bad_row=on_bad_row, max_line_bytes=max_line_bytes)
    parser.feed(body)
    return parser.finish()
