"""Bytes to pieces of whole lines, chunk by chunk, and the bad-row policy: what every NDJSON
parser shares.

Feed a body in chunks cut anywhere (inside a UTF-8 character, between CR and LF, inside a
line), then finish. `LineParser` keeps the start of a line not complete yet in a buffer bounded
by `max_line_bytes`, and hands its subclass pieces of whole lines (each ending with LF) of about
`piece_bytes`, with the line number of their first line. A final line without LF is handed on
at `finish` with one added. A UTF-8 byte-order mark at the start of the body is dropped.

Line numbers count physical lines from 1. A line holding only JSON whitespace (space, tab, CR)
is blank: not a row. A bad row raises `NdjsonBadRowError` (a ProtocolError, like the CSV
parsers' BadRowError, with the same message) under `on_bad_row="fail"`; under "skip" it is left
out but still counted as a row (`BadLines`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Generic, Literal, TypeVar

from export_tally.core.aggregation import BodyResult
from export_tally.core.errors import ProtocolError

if TYPE_CHECKING:
    from collections.abc import Iterator

BadRowMode = Literal["fail", "skip"]

DEFAULT_MAX_LINE_BYTES = 64 << 20
"""A resource may be large (a Binary or a DocumentReference holds base64 data): 64 MiB."""
PIECE_BYTES = 64 * 1024
SKIPPED_LINES_KEPT = 5
BOM = b"\xef\xbb\xbf"
JSON_WHITESPACE = b" \t\r"  # and LF, which ends a line

A = TypeVar("A")


class NdjsonFormatError(ProtocolError):
    """A body is not the NDJSON the protocol promises (a line too long, a bad row)."""


class NdjsonBadRowError(NdjsonFormatError):
    """A line the tool cannot use (raised when `on_bad_row` is "fail")."""

    def __init__(self, line_number: int, reason: str) -> None:
        super().__init__(f"bad row at line {line_number}: {reason}")
        self.line_number = line_number
        self.reason = reason

    def __reduce__(self) -> tuple[type[NdjsonBadRowError], tuple[int, str]]:
        # Raised in worker processes and pickled back: rebuild from the fields.
        return (self.__class__, (self.line_number, self.reason))


class BadLines:
    """The bad-row policy: "fail" raises NdjsonBadRowError, "skip" counts the row and goes on.

    `skipped` counts the rows left out; `lines` keeps the first SKIPPED_LINES_KEPT of their line
    numbers. Raises ValueError for another mode.
    """

    __slots__ = ("_skip", "lines", "skipped")

    def __init__(self, mode: BadRowMode) -> None:
        if mode not in ("fail", "skip"):
            raise ValueError(f"on_bad_row must be 'fail' or 'skip', not {mode!r}")
        self._skip = mode == "skip"
        self.skipped = 0
        self.lines: list[int] = []

    def reject(self, line_number: int, reason: str) -> None:
        """A bad row at `line_number`: raise (fail) or note it (skip)."""
        if not self._skip:
            raise NdjsonBadRowError(line_number, reason)
        self.skipped += 1
        if len(self.lines) < SKIPPED_LINES_KEPT:
            self.lines.append(line_number)


def is_blank(line: bytes) -> bool:
    """Whether a line (without its LF) holds only JSON whitespace: not a row."""
    return not line.strip(JSON_WHITESPACE)


class LineParser(ABC, Generic[A]):
    """Cuts an NDJSON body fed as chunks of bytes into pieces of whole lines for a subclass.

    `feed` and `finish` raise NdjsonFormatError for more than `max_line_bytes` bytes without
    a line end (checked on what is buffered between chunks, so memory stays bounded), and
    whatever the subclass raises for a bad row. After an error the parser is spent.
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
        self._bad_rows = BadLines(on_bad_row)
        self._max_line_bytes = max_line_bytes
        self._piece_bytes = piece_bytes
        self._pending = bytearray()  # the start of a line not complete yet
        self._started = False  # whether the body's first bytes (a BOM?) were looked at
        self._lines = 0  # physical lines consumed
        self._rows = 0
        self._finished = False

    @abstractmethod
    def _take_piece(self, piece: bytes, first_line: int) -> int:
        """Take every line of `piece` (whole lines, each ending with LF); `first_line` is the
        number of its first. Returns its rows (blank lines are not rows; bad ones are), and
        calls `self._bad_rows.reject` for each bad row, in line order."""

    @abstractmethod
    def _aggregate(self) -> A:
        """The aggregate of every row taken (called once, by `finish`)."""

    @property
    def rows(self) -> int:
        """Rows completed so far (skipped bad ones included, blank lines not); for progress."""
        return self._rows

    def feed(self, chunk: bytes) -> None:
        """Take every line that `chunk` completes; keep the incomplete rest for later."""
        self._check_open()
        cut = chunk.rfind(b"\n") + 1
        if cut:
            if self._pending:
                block = b"".join((self._pending, memoryview(chunk)[:cut]))
            else:
                block = chunk[:cut]
            self._pending = bytearray(memoryview(chunk)[cut:])
            self._consume(block)
        else:
            self._pending += chunk
        if len(self._pending) > self._max_line_bytes:
            self._finished = True
            raise NdjsonFormatError(
                f"line {self._lines + 1} is longer than {self._max_line_bytes} bytes"
            )

    def finish(self) -> BodyResult[A]:
        """Take the last line (a final newline is optional) and return the result; the parser
        is spent after."""
        self._check_open()
        tail = bytes(self._pending)
        self._pending = bytearray()
        if tail:
            self._consume(tail + b"\n")
        self._finished = True
        bad = self._bad_rows
        return BodyResult(self._aggregate(), self._rows, bad.skipped, tuple(bad.lines))

    def _check_open(self) -> None:
        if self._finished:
            raise RuntimeError("this parser has finished; make a new one")

    def _consume(self, block: bytes) -> None:
        if not self._started:
            self._started = True
            block = block.removeprefix(BOM)
        for piece in _pieces(block, self._piece_bytes):
            try:
                self._rows += self._take_piece(piece, self._lines + 1)
            except Exception:
                self._finished = True
                raise
            self._lines += piece.count(b"\n")


def _pieces(block: bytes, size: int) -> Iterator[bytes]:
    """`block` (whole lines) in pieces of about `size` bytes or more, each cut after a line
    end; a block under twice `size` whole (no small piece at the end, whose fixed costs would be
    spread over few rows)."""
    start = 0
    end_of_block = len(block)
    while end_of_block - start >= 2 * size:
        end = block.find(b"\n", start + size - 1) + 1
        if end == 0 or end_of_block - end < size:
            break
        yield block[start:end]
        start = end
    if start < end_of_block:
        yield block[start:] if start else block
