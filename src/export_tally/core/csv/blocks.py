"""Bytes to blocks of whole records, chunk by chunk: the machinery every export parser shares.

Feed a body in chunks cut anywhere (inside a UTF-8 character, between CR and LF, inside a quoted
field), then finish. `BlockParser` keeps the start of a record not complete yet in a buffer whose
size is bounded by `max_line_bytes`, reads the header (line 1), and hands each block of complete
records to its subclass in one of two ways:

- A block without a `"` byte is offered to `_take_plain` in pieces of whole lines of
  `piece_bytes` to twice that (so that what a fast path makes per row stays in the CPU cache),
  which may take all of a piece, after `fast_path` proved every line a good row so that per-row
  work stays in C, or decline it. A declined piece with blank lines is offered again without them (blank
  lines are not rows); a piece declined again goes to csv.reader alone.
- Any other block (quotes, or one declined) goes through csv.reader (`reader_path`), row by row.

Line numbers count physical lines, the header being line 1.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Generic, TypeVar

from export_tally.core.aggregation import BodyResult
from export_tally.core.csv.reader_path import BadRowMode, BadRows, Columns, read_header, read_rows
from export_tally.errors import CsvFormatError

if TYPE_CHECKING:
    from collections.abc import Iterator

DEFAULT_MAX_LINE_BYTES = 1 << 20
PIECE_BYTES = 64 * 1024
"""Quote-free blocks go to a fast path in pieces of about this size (see `_take_plain`)."""
BOM = b"\xef\xbb\xbf"
_BLANK_LINE = re.compile(rb"^\r?\n", re.MULTILINE)

A = TypeVar("A")


class BlockParser(ABC, Generic[A]):
    """Cuts an export CSV fed as chunks of bytes into blocks of records for a subclass.

    The header (line 1) names the columns; `patient_id`, `event_time`, `event_type` and `value`
    must be there, in any order, among any others. Each data row must have the header's field
    count, a non-empty patient_id and event_type, and valid UTF-8; a subclass may add rules. A bad
    row raises BadRowError with `on_bad_row="fail"`; with "skip" it is left out of the aggregate
    but still counted in `rows`. Blank lines are not rows. An empty body means zero rows.

    `feed` and `finish` raise CsvFormatError for a bad header, a bad row (in "fail" mode), more
    than `max_line_bytes` bytes without a line end outside quotes (checked on what is buffered
    between chunks, so memory stays bounded), or a quoted field still open at the end. After an
    error the parser is spent.

    `piece_bytes` sizes the pieces offered to the fast path; tests lower it so that small bodies
    cross piece boundaries too.

    Known limit: csv.reader refuses a field longer than `csv.field_size_limit()` (128 KiB unless
    raised), so such a field makes its row bad when its block needs csv.reader, while a fast
    path may accept it. Changing that limit is process-wide, so it is left to the application.
    """

    def __init__(
        self,
        *,
        on_bad_row: BadRowMode = "fail",
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        piece_bytes: int = PIECE_BYTES,
    ) -> None:
        if max_line_bytes < 1:
            raise ValueError(f"max_line_bytes must be positive, not {max_line_bytes!r}")
        if piece_bytes < 1:
            raise ValueError(f"piece_bytes must be positive, not {piece_bytes!r}")
        self._bad_rows = BadRows(on_bad_row)
        self._max_line_bytes = max_line_bytes
        self._piece_bytes = piece_bytes
        self._columns: Columns | None = None
        self._pending = bytearray()  # the start of a record not complete yet
        self._in_quotes = False  # whether _pending holds an odd number of quotes
        self._lines = 0  # physical lines consumed, header included
        self._rows = 0
        self._plain_rows = 0  # rows a fast path took
        self._finished = False

    @abstractmethod
    def _take_plain(self, block: bytes) -> int | None:
        """Take every row of a quote-free block of whole lines, or none of them.

        Returns the number of rows taken, which is the number of lines: a block with a line
        that is not a row (a blank line too) is declined. Returns None to decline; it must not
        have counted any of the block's rows then (no trace of them in the aggregate), since
        they are offered again or read by csv.reader. Work that leaves the aggregate the same
        (StatsParser folding its entries or ending a time run first) may have been done.
        """

    @abstractmethod
    def _take_row(self, line_number: int, row: list[str]) -> None:
        """Take one row from csv.reader: the right field count, keys non-empty, valid UTF-8.

        Calls `self._bad_rows.reject` instead if the row is bad for another reason.
        """

    @abstractmethod
    def _aggregate(self) -> A:
        """The aggregate of every row taken (called once, by `finish`)."""

    @property
    def rows(self) -> int:
        """Data rows completed so far (skipped ones included); for progress reports."""
        return self._rows

    @property
    def plain_rows(self) -> int:
        """How many of `rows` a fast path took (the rest went through csv.reader)."""
        return self._plain_rows

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

    def finish(self) -> BodyResult[A]:
        """Take the last record (a final newline is optional) and return the result; the parser
        is spent after."""
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
        bad = self._bad_rows
        return BodyResult(self._aggregate(), self._rows, bad.skipped, tuple(bad.lines))

    def _check_open(self) -> None:
        if self._finished:
            raise RuntimeError("this parser has finished; make a new one")

    def _consume(self, block: bytes) -> bytes:
        """Take the records of a block of whole lines; return an incomplete last record."""
        if self._columns is None:
            block = self._read_header(block)
        if b'"' in block:
            rest = self._read_rows(block)
        else:
            rest = b""
            for piece in _pieces(block, self._piece_bytes):
                self._consume_plain(piece)
        return rest

    def _consume_plain(self, block: bytes) -> None:
        """Take a quote-free block of whole lines: on the fast path if it will, else csv's."""
        taken = self._take_plain(block)
        if taken is not None:
            lines = taken  # every line was a row
        elif (
            _BLANK_LINE.search(block)
            and (taken := self._take_plain(_BLANK_LINE.sub(b"", block))) is not None
        ):
            lines = block.count(b"\n")
        else:
            self._read_rows(block)  # whole lines without quotes: nothing is left over
            return
        self._rows += taken
        self._plain_rows += taken
        self._lines += lines

    def _read_header(self, block: bytes) -> bytes:
        """Read the columns named by the first record; return the bytes after it."""
        end = _first_record_end(block)
        if end < 0:
            raise CsvFormatError("line 1: header has a quoted field that is never closed")
        names, self._lines = read_header(block[:end].removeprefix(BOM))
        self._columns = Columns.from_header(names)
        return block[end:]

    def _read_rows(self, block: bytes) -> bytes:
        """The slow path: csv.reader row by row; returns a last record still open."""
        assert self._columns is not None
        read = read_rows(block, self._columns, self._lines + 1, self._take_row, self._bad_rows)
        self._rows += read.rows
        self._lines += read.lines
        return read.rest


def _pieces(block: bytes, size: int) -> Iterator[bytes]:
    """`block` (whole lines) in as many pieces as it holds `size` bytes, each cut after a line
    end: pieces of `size` to twice that, or the block whole when it is smaller (no small piece
    at the end, whose fixed costs would be spread over few rows)."""
    count = len(block) // size
    if count <= 1:
        yield block
        return
    start = 0
    for k in range(1, count):
        end = block.rfind(b"\n", start, len(block) * k // count) + 1
        if end <= start:  # a line longer than the piece: take it whole
            end = block.find(b"\n", start) + 1 or len(block)
        yield block[start:end]
        start = end
    if start < len(block):
        yield block[start:]


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
    and `read_rows` hands back a record it finds still open.
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
