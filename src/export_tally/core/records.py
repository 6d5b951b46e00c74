"""Bytes to CSV records, chunk by chunk: the machinery every export parser shares.

Feed a body in chunks cut anywhere (inside a UTF-8 character, between CR and LF, inside a quoted
field), then finish. `RecordParser` keeps the start of a record not complete yet in a buffer
whose size is bounded by `max_line_bytes`, reads the header, and hands each block of complete
records to its subclass in one of two ways:

- A block without a `"` byte is offered whole to `_take_plain`, which may accept it (typically
  after one regex proved every line a good row, so per-row work stays in C) or decline it.
- Any other block (quotes, or one declined) goes through `csv.reader`, row by row. Rows with the
  wrong field count, an empty patient_id or event_type, or invalid UTF-8 are bad rows here; every
  other row goes to `_take_row`, which may find it bad too.

Lines are physical lines, 1-based, the header being line 1; a record spanning several lines (a
quoted newline) is reported by the line it starts on. A bad row raises BadRowError with
`on_bad_row="fail"`; with "skip" it is left out but still counted in `rows`.
"""

from __future__ import annotations

import csv
import itertools
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from export_tally.core.errors import CsvFormatError

if TYPE_CHECKING:
    from collections.abc import Iterator

REQUIRED_COLUMNS = ("patient_id", "event_time", "event_type", "value")
DEFAULT_MAX_LINE_BYTES = 1 << 20
SKIPPED_LINES_KEPT = 5

BadRowMode = Literal["fail", "skip"]

BOM = b"\xef\xbb\xbf"
_LINE = re.compile(r"[^\n]*\n")
_BLANK_LINE = re.compile(rb"^\r?\n", re.MULTILINE)
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")  # what surrogateescape makes of invalid UTF-8


class BadRowError(CsvFormatError):
    """A data row the tool cannot use (raised when `on_bad_row` is "fail")."""

    def __init__(self, line_number: int, reason: str) -> None:
        super().__init__(f"bad row at line {line_number}: {reason}")
        self.line_number = line_number
        self.reason = reason

    def __reduce__(self) -> tuple[type[BadRowError], tuple[int, str]]:
        # Raised in worker processes and pickled back: rebuild from the fields, not the message.
        return (self.__class__, (self.line_number, self.reason))


@dataclass(frozen=True, slots=True)
class Columns:
    """Where the required columns are in a header, and how many fields a row has."""

    width: int
    patient: int
    time: int
    event_type: int
    value: int

    @classmethod
    def from_header(cls, names: list[str]) -> Columns:
        """Raises CsvFormatError when a required column is missing or repeated."""
        missing = [name for name in REQUIRED_COLUMNS if name not in names]
        if missing:
            raise CsvFormatError(f"header lacks column(s) {', '.join(missing)}")
        repeated = [name for name in REQUIRED_COLUMNS if names.count(name) > 1]
        if repeated:
            raise CsvFormatError(f"header repeats column(s) {', '.join(repeated)}")
        return cls(len(names), *(names.index(name) for name in REQUIRED_COLUMNS))


class RecordParser(ABC):
    """Cuts an export CSV fed as chunks of bytes into blocks of records for a subclass.

    The header (line 1) names the columns; `patient_id`, `event_time`, `event_type` and `value`
    must be there, in any order, among any others. Blank lines are not rows. An empty body
    means zero rows.

    `feed` and `_finish_records` raise CsvFormatError for a bad header, a bad row (in "fail"
    mode), more than `max_line_bytes` bytes without a line end outside quotes (checked on what
    is buffered between chunks, so memory stays bounded), or a quoted field still open at the
    end. After an error the parser is spent.

    Known limit: csv.reader refuses a field longer than `csv.field_size_limit()` (128 KiB unless
    raised), so such a field makes its row bad when its block needs csv.reader, while a fast
    path may accept it. Changing that limit is process-wide, so it is left to the application.
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
        self._columns: Columns | None = None
        self._pending = bytearray()  # the start of a record not complete yet
        self._in_quotes = False  # whether _pending holds an odd number of quotes
        self._lines = 0  # physical lines consumed, header included
        self._rows = 0
        self._skipped = 0
        self._skipped_lines: list[int] = []
        self._finished = False

    @abstractmethod
    def _start(self, columns: Columns, names: list[str]) -> None:
        """Get ready for rows with these columns (called once, after the header)."""

    @abstractmethod
    def _take_plain(self, block: bytes, lines: int) -> int | None:
        """Take every row of a quote-free block of `lines` whole lines, or none of them.

        Returns the number of rows taken, or None to leave the whole block to csv.reader. It
        must not change any state when it returns None.
        """

    @abstractmethod
    def _take_row(self, line_number: int, row: list[str]) -> None:
        """Take one row from csv.reader: the right field count, keys non-empty, valid UTF-8.

        Calls `_reject` instead if the row is bad for another reason.
        """

    def _plain_piece_bytes(self) -> int | None:
        """If not None, quote-free blocks are offered to `_take_plain` in pieces of whole lines
        of about this many bytes, so what a fast path makes per row stays in the CPU cache; a
        piece it declines goes to csv.reader alone."""
        return None

    @property
    def rows(self) -> int:
        """Data rows completed so far (skipped ones included); for progress reports."""
        return self._rows

    def feed(self, chunk: bytes) -> None:
        """Take every record that `chunk` completes; keep the incomplete rest for later."""
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

    def _finish_records(self) -> None:
        """Take the last record (a final newline is optional); the parser is spent after."""
        self._check_open()
        self._finished = True
        tail = bytes(self._pending)
        self._pending = bytearray()
        if self._columns is None and tail == BOM:
            tail = b""  # a byte-order mark alone is an empty body
        if tail and self._consume(tail + b"\n"):
            raise CsvFormatError(
                f"line {self._lines + 1}: quoted field not closed by the end of the body"
            )

    def _check_open(self) -> None:
        if self._finished:
            raise RuntimeError("this parser has finished; make a new one")

    def _consume(self, block: bytes) -> bytes:
        """Take the records of a block of whole lines; return an incomplete last record."""
        if self._columns is None:
            block = self._read_header(block)
        if b'"' in block:
            return self._read_rows(block)
        size = self._plain_piece_bytes()
        if size is None or len(block) <= size:
            self._consume_plain(block)
        else:
            for piece in _pieces(block, size):
                self._consume_plain(piece)
        return b""

    def _consume_plain(self, block: bytes) -> None:
        """Take a quote-free block of whole lines: on the fast path if it will, else csv's."""
        lines = block.count(b"\n")
        taken = self._take_plain(block, lines)
        if taken is None and _BLANK_LINE.search(block):
            plain = _BLANK_LINE.sub(b"", block)
            taken = self._take_plain(plain, plain.count(b"\n"))
        if taken is None:
            self._read_rows(block)  # whole lines without quotes: nothing is left over
        else:
            self._rows += taken
            self._lines += lines

    def _read_header(self, block: bytes) -> bytes:
        """Read the columns named by the first record; return the bytes after it."""
        end = _first_record_end(block)
        if end < 0:
            raise CsvFormatError("line 1: header has a quoted field that is never closed")
        raw = block[:end].removeprefix(BOM)
        try:
            text = raw.decode("utf-8")
            records = list(csv.reader(_LINE.findall(text), strict=True))
        except UnicodeDecodeError:
            raise CsvFormatError("line 1: header is not valid UTF-8") from None
        except csv.Error as exc:
            raise CsvFormatError(f"line 1: header is not valid CSV ({exc})") from None
        if len(records) != 1:
            raise CsvFormatError("line 1: header is not valid CSV (quotes do not pair up)")
        names = records[0]
        columns = Columns.from_header(names)
        self._lines = text.count("\n")
        self._start(columns, names)
        self._columns = columns
        return block[end:]

    def _read_rows(self, block: bytes) -> bytes:
        """The slow path: csv.reader row by row, with line numbers for bad rows."""
        assert self._columns is not None
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
        width, patient, event_type = (
            self._columns.width,
            self._columns.patient,
            self._columns.event_type,
        )
        take_row = self._take_row
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
                take_row(start, row)
        self._lines += done
        return "".join(lines[done:]).encode("utf-8", "surrogateescape")

    def _reject(self, line_number: int, reason: str) -> None:
        if not self._skip:
            raise BadRowError(line_number, reason)
        self._skipped += 1
        if len(self._skipped_lines) < SKIPPED_LINES_KEPT:
            self._skipped_lines.append(line_number)


def is_plain_text(block: bytes) -> bool:
    """Whether a quote-free block can be matched by a row regex as csv.reader would read it.

    csv ends a record at a bare CR, which a regex would not, and invalid UTF-8 makes a row bad.
    """
    if b"\r" in block and block.count(b"\r") != block.count(b"\r\n"):
        return False
    if not block.isascii():
        try:
            block.decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True


def _pieces(block: bytes, size: int) -> Iterator[bytes]:
    """`block` (whole lines) cut after the last line end within every `size` bytes or so."""
    start = 0
    while start < len(block):
        end = block.rfind(b"\n", start, start + size) + 1
        if end <= start:  # a line longer than `size`: take it whole
            end = block.find(b"\n", start) + 1 or len(block)
        yield block[start:end]
        start = end


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
    and `_read_rows` hands back a record it finds still open.
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
