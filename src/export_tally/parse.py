"""Bytes to a Tally, chunk by chunk: an incremental counter for the export CSV.

Feed a body in chunks cut anywhere (inside a UTF-8 character, between CR and LF, inside a quoted
field), then call `finish`. Complete records are counted a block at a time, in one of two ways:

- A block without a `"` byte goes through one regex built from the header, so matching,
  extracting the two key fields and counting all happen in C. The block is accepted only when
  the counts of matches, newlines and commas agree, which proves every line is a good row (see
  `_Layout.match_plain`); keys stay bytes and are decoded once per distinct key, at the end.
- Any other block (quotes, or one that fails those checks) goes through `csv.reader`, row by row,
  which also finds each bad row and its line number.

Lines are physical lines, 1-based, the header being line 1; a record spanning several lines (a
quoted newline) is reported by the line it starts on. A record not complete yet (no newline
outside quotes) waits in a buffer whose size is bounded by `max_line_bytes`.
"""

from __future__ import annotations

import csv
import itertools
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from export_tally.errors import CsvFormatError
from export_tally.tally import Key, Tally

REQUIRED_COLUMNS = ("patient_id", "event_time", "event_type", "value")
DEFAULT_MAX_LINE_BYTES = 1 << 20
SKIPPED_LINES_KEPT = 5

BadRowMode = Literal["fail", "skip"]

_BOM = b"\xef\xbb\xbf"
_LINE = re.compile(r"[^\n]*\n")
_BLANK_LINE = re.compile(rb"^\r?\n", re.MULTILINE)
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")  # what surrogateescape makes of invalid UTF-8


class BadRowError(CsvFormatError):
    """A data row the tool cannot count (raised when `on_bad_row` is "fail")."""

    def __init__(self, line_number: int, reason: str) -> None:
        super().__init__(f"bad row at line {line_number}: {reason}")
        self.line_number = line_number
        self.reason = reason

    def __reduce__(self) -> tuple[type[BadRowError], tuple[int, str]]:
        # Raised in worker processes and pickled back: rebuild from the fields, not the message.
        return (self.__class__, (self.line_number, self.reason))


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
        missing = [name for name in REQUIRED_COLUMNS if name not in names]
        if missing:
            raise CsvFormatError(f"header lacks column(s) {', '.join(missing)}")
        repeated = [name for name in REQUIRED_COLUMNS if names.count(name) > 1]
        if repeated:
            raise CsvFormatError(f"header repeats column(s) {', '.join(repeated)}")
        keys = (names.index("patient_id"), names.index("event_type"))
        last = len(names) - 1
        # Single negated characters ([^,] and [^\n]) run in sre's fastest loop. They let a field
        # run into the next line or a last field swallow commas, but match_plain's counts reject
        # any block where that happened.
        fields = [
            (rb"([^\r\n]+)\r?" if k == last else rb"([^,]+)")
            if k in keys
            else (rb"[^\n]*" if k == last else rb"[^,]*")
            for k in range(len(names))
        ]
        return cls(len(names), *keys, re.compile(b",".join(fields) + b"\n"))

    def match_plain(self, block: bytes, lines: int) -> list[tuple[bytes, bytes]] | None:
        """The key fields of every row of a quote-free block, or None if any line is not a row.

        The groups come in column order. Each match ends with its own newline, and the search
        restarts where the previous match ended, so one match per line (matches == newlines)
        with exactly width-1 commas each (commas == (width-1) * newlines) means every line is
        a whole row with the right field count and non-empty keys.
        """
        if block.count(b",") != (self.width - 1) * lines:
            return None
        # csv ends a record at a bare CR; the regex would not, so leave those to csv.reader.
        if b"\r" in block and block.count(b"\r") != block.count(b"\r\n"):
            return None
        if not block.isascii():
            try:
                block.decode("utf-8")
            except UnicodeDecodeError:
                return None
        rows: list[tuple[bytes, bytes]] = self.plain_row.findall(block)
        return rows if len(rows) == lines else None


class CountingParser:
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
        if on_bad_row not in ("fail", "skip"):
            raise ValueError(f"on_bad_row must be 'fail' or 'skip', not {on_bad_row!r}")
        if max_line_bytes < 1:
            raise ValueError(f"max_line_bytes must be positive, not {max_line_bytes!r}")
        self._skip = on_bad_row == "skip"
        self._max_line_bytes = max_line_bytes
        self._layout: _Layout | None = None
        self._pending = bytearray()  # the start of a record not complete yet
        self._in_quotes = False  # whether _pending holds an odd number of quotes
        self._lines = 0  # physical lines consumed, header included
        self._rows = 0
        self._skipped = 0
        self._skipped_lines: list[int] = []
        self._raw_counts: Counter[tuple[bytes, bytes]] = Counter()  # fast path, column order
        self._text_counts: Counter[Key] = Counter()  # csv path
        self._finished = False

    @property
    def rows(self) -> int:
        """Data rows completed so far (skipped ones included); for progress reports."""
        return self._rows

    def feed(self, chunk: bytes) -> None:
        """Count every record that `chunk` completes; keep the incomplete rest for later."""
        self._check_open()
        cut = _last_record_end(chunk, self._in_quotes)
        if cut:
            if self._pending:
                block = b"".join((self._pending, memoryview(chunk)[:cut]))
            else:
                block = chunk[:cut]
            self._pending = bytearray(self._consume(block))
            self._pending += memoryview(chunk)[cut:]
            self._in_quotes = self._pending.count(b'"') % 2 == 1
        else:
            self._pending += chunk
            self._in_quotes ^= chunk.count(b'"') % 2 == 1
        if len(self._pending) > self._max_line_bytes:
            raise CsvFormatError(
                f"line {self._lines + 1} is longer than {self._max_line_bytes} bytes "
                "(no line end outside quotes)"
            )

    def finish(self) -> ParseResult:
        """Count the last record (a final newline is optional) and return the result."""
        self._check_open()
        self._finished = True
        tail = bytes(self._pending)
        self._pending = bytearray()
        if self._layout is None and tail == _BOM:
            tail = b""  # a byte-order mark alone is an empty body
        if tail and self._consume(tail + b"\n"):
            raise CsvFormatError(
                f"line {self._lines + 1}: quoted field not closed by the end of the body"
            )
        return ParseResult(self._tally(), self._rows, self._skipped, tuple(self._skipped_lines))

    def _check_open(self) -> None:
        if self._finished:
            raise RuntimeError("this parser has finished; make a new one")

    def _consume(self, block: bytes) -> bytes:
        """Count the records of a block of whole lines; return an incomplete last record."""
        layout = self._layout
        if layout is None:
            layout, block = self._read_header(block)
            self._layout = layout
        if b'"' not in block:
            lines = block.count(b"\n")
            rows = layout.match_plain(block, lines)
            if rows is None and _BLANK_LINE.search(block):
                plain = _BLANK_LINE.sub(b"", block)
                rows = layout.match_plain(plain, plain.count(b"\n"))
            if rows is not None:
                self._raw_counts.update(rows)
                self._rows += len(rows)
                self._lines += lines
                return b""
        return self._count_rows(block, layout)

    def _read_header(self, block: bytes) -> tuple[_Layout, bytes]:
        """The layout named by the first record, and the bytes after it."""
        end = _first_record_end(block)
        if end < 0:
            raise CsvFormatError("line 1: header has a quoted field that is never closed")
        raw = block[:end].removeprefix(_BOM)
        try:
            text = raw.decode("utf-8")
            records = list(csv.reader(_LINE.findall(text), strict=True))
        except UnicodeDecodeError:
            raise CsvFormatError("line 1: header is not valid UTF-8") from None
        except csv.Error as exc:
            raise CsvFormatError(f"line 1: header is not valid CSV ({exc})") from None
        if len(records) != 1:
            raise CsvFormatError("line 1: header is not valid CSV (quotes do not pair up)")
        self._lines = text.count("\n")
        return _Layout.from_header(records[0]), block[end:]

    def _count_rows(self, block: bytes, layout: _Layout) -> bytes:
        """The slow path: csv.reader row by row, with line numbers for bad rows."""
        try:
            text = block.decode("utf-8")
            mangled = False
        except UnicodeDecodeError:
            # Keep going so the bad rows can be found (and skipped); they show as surrogates.
            text = block.decode("utf-8", "surrogateescape")
            mangled = True
        lines = _LINE.findall(text)
        ran_out: list[bool] = []
        reader = csv.reader(itertools.chain(lines, _note_end(ran_out)), strict=True)
        counts = self._text_counts
        width, patient, event_type = layout.width, layout.patient_index, layout.type_index
        done = 0  # lines used by the records read so far
        while True:
            start = self._lines + done + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                if ran_out:
                    break  # the block ends inside a quoted field: wait for more bytes
                self._rows += 1
                self._reject(start, f"malformed CSV ({exc})")
                done = reader.line_num
                continue
            done = reader.line_num
            if not row:
                continue
            self._rows += 1
            if len(row) != width:
                self._reject(start, f"expected {width} fields, found {len(row)}")
            elif not row[patient]:
                self._reject(start, "empty patient_id")
            elif not row[event_type]:
                self._reject(start, "empty event_type")
            elif mangled and any(_ESCAPED_BYTE.search(field) for field in row):
                self._reject(start, "invalid UTF-8")
            else:
                counts[row[patient], row[event_type]] += 1
        self._lines += done
        return "".join(lines[done:]).encode("utf-8", "surrogateescape")

    def _reject(self, line_number: int, reason: str) -> None:
        if not self._skip:
            raise BadRowError(line_number, reason)
        self._skipped += 1
        if len(self._skipped_lines) < SKIPPED_LINES_KEPT:
            self._skipped_lines.append(line_number)

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


def _first_record_end(data: bytes) -> int:
    """Index just past the first newline outside quotes, or -1 if there is none."""
    quotes = start = 0
    while (newline := data.find(b"\n", start)) >= 0:
        quotes += data.count(b'"', start, newline)
        if quotes % 2 == 0:
            return newline + 1
        start = newline + 1
    return -1


def _last_record_end(chunk: bytes, in_quotes: bool) -> int:
    """Index just past the last newline of `chunk` outside quotes, or 0 if there is none.

    `in_quotes`: the bytes before `chunk` leave a quoted field open. Quote parity is exact for
    RFC 4180 (a doubled quote counts twice); for stray quotes csv.reader has the last word,
    and `_count_rows` hands back a record it finds still open.
    """
    if not in_quotes and b'"' not in chunk:  # the common case; `in` is faster than count
        return chunk.rfind(b"\n") + 1
    odd = (chunk.count(b'"') + in_quotes) % 2 == 1  # parity of the quotes before `end`
    end = len(chunk)
    while (newline := chunk.rfind(b"\n", 0, end)) >= 0:
        odd ^= chunk.count(b'"', newline, end) % 2 == 1
        if not odd:
            return newline + 1
        end = newline
    return 0


def _note_end(ran_out: list[bool]) -> Iterator[str]:
    """An empty iterator that records in `ran_out` when someone asks it for a line."""
    ran_out.append(True)
    yield from ()
