"""Bytes to pieces of whole lines, chunk by chunk, and the bad-row policy: what every NDJSON
parser shares.

Feed a body in chunks cut anywhere (inside a UTF-8 character, between CR and LF, inside a
line), then finish. `LineParser` keeps the start of a line not complete yet in a buffer bounded
by `max_line_bytes`, and hands its subclass the lines each chunk completes, each with its LF,
in lists of at most `piece_lines`, with the line number of their first. A final line without LF
is handed on at `finish`. A UTF-8 byte-order mark at the start of the body is dropped.

The lines are cut by `BytesIO.readlines`, which finds each LF with `memchr`: on lines of
hundreds of bytes that is several times faster than `bytes.split`, which looks at every byte in
a plain loop (`python -m benchmarks.bench_ndjson --cuts`). Keeping the LF costs nothing: it is JSON
whitespace, so a decoder takes the line as it is.

Line numbers count physical lines from 1. A line holding only JSON whitespace (space, tab, CR)
is blank: not a row. A bad row raises `NdjsonBadRowError` (a ProtocolError, like the CSV
parsers' BadRowError, with the same message) under `on_bad_row="fail"`; under "skip" it is left
out but still counted as a row (`BadLines`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from io import BytesIO
from typing import Generic, Literal, TypeVar

from export_tally.core.aggregation import BodyResult
from export_tally.errors import ProtocolError

BadRowMode = Literal["fail", "skip"]

DEFAULT_MAX_LINE_BYTES = 64 << 20
"""A resource may be large (a Binary or a DocumentReference holds base64 data): 64 MiB."""
PIECE_LINES = 256
"""Lines go to the subclass in lists of at most this many (a 64 KiB chunk holds about 100)."""
SKIPPED_LINES_KEPT = 5
BOM = b"\xef\xbb\xbf"
JSON_WHITESPACE = b" \t\r\n"

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
    """Whether a line (with or without its LF) holds only JSON whitespace: not a row."""
    return not line.strip(JSON_WHITESPACE)


class LineParser(ABC, Generic[A]):
    """Cuts an NDJSON body fed as chunks of bytes into lists of whole lines for a subclass.

    `feed` and `finish` raise NdjsonFormatError for more than `max_line_bytes` bytes without
    a line end (checked on what is buffered between chunks, so memory stays bounded), and
    whatever the subclass raises for a bad row. After an error the parser is spent.
    """

    def __init__(
        self,
        *,
        on_bad_row: BadRowMode = "fail",
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        piece_lines: int = PIECE_LINES,
    ) -> None:
        if max_line_bytes < 1:
            raise ValueError(f"max_line_bytes must be positive, not {max_line_bytes!r}")
        if piece_lines < 1:
            raise ValueError(f"piece_lines must be positive, not {piece_lines!r}")
        self._bad_rows = BadLines(on_bad_row)
        self._max_line_bytes = max_line_bytes
        self._piece_lines = piece_lines
        self._pending = bytearray()  # the start of a line not complete yet
        self._pending_ascii = True  # whether it is known to be ASCII
        self._started = False  # whether the body's first line (a BOM?) was looked at
        self._lines = 0  # physical lines consumed
        self._rows = 0
        self._finished = False

    @abstractmethod
    def _take_lines(self, lines: list[bytes], first_line: int, ascii: bool) -> int:
        """Take `lines` (whole lines, each ending with its LF but the body's last, which may
        not; a CR may come before the LF); `first_line` is the number of the first; `ascii`:
        they are known to be ASCII (else they may be anything). Returns their rows (blank lines
        are not rows; bad ones are), and calls `self._bad_rows.reject` for each bad row, in
        line order."""

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
        ascii = chunk.isascii()  # once a chunk, not once a line
        if b"\n" not in chunk:
            self._pending += chunk
            self._pending_ascii &= ascii
        else:
            lines = BytesIO(chunk).readlines()  # cut after each LF, found by memchr
            if self._pending:
                lines[0] = bytes(self._pending) + lines[0]
            rest = b"" if lines[-1].endswith(b"\n") else lines.pop()
            self._consume(lines, ascii and self._pending_ascii)
            self._pending = bytearray(rest)
            self._pending_ascii = ascii
        if len(self._pending) > self._max_line_bytes:
            self._finished = True
            raise NdjsonFormatError(
                f"line {self._lines + 1} is longer than {self._max_line_bytes} bytes"
            )

    def finish(self) -> BodyResult[A]:
        """Take the last line (a final newline is optional) and return the result; the parser
        is spent after."""
        self._check_open()
        if self._pending:
            self._consume([bytes(self._pending)], self._pending_ascii)
            self._pending = bytearray()
        self._finished = True
        bad = self._bad_rows
        return BodyResult(self._aggregate(), self._rows, bad.skipped, tuple(bad.lines))

    def _check_open(self) -> None:
        if self._finished:
            raise RuntimeError("this parser has finished; make a new one")

    def _consume(self, lines: list[bytes], ascii: bool) -> None:
        if not self._started:
            self._started = True
            lines[0] = lines[0].removeprefix(BOM)
        size = self._piece_lines
        try:
            for start in range(0, len(lines), size):
                piece = lines[start : start + size] if len(lines) > size else lines
                self._rows += self._take_lines(piece, self._lines + 1, ascii)
                self._lines += len(piece)
        except Exception:
            self._finished = True
            raise
