"""Splitting one download into byte ranges that are counted separately, then merged.

A part owns exactly the records whose first byte lies in its range [start, end). It looks at the
byte before `start` to learn whether a record starts at `start`, skips the tail of a record that
began earlier, and reads past `end` to finish its own last record. Parts together therefore count
every record once, wherever the boundaries fall.

That reasoning treats every newline as a record boundary, which is only true when no field is
quoted; so every part reports whether it saw a `"` byte, and a download any of whose parts did is
counted again whole. Pure: bytes in, bytes out.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

# Parts smaller than this cost more in requests than they win in parallelism.
DEFAULT_MIN_PART_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class ByteRange:
    """Records whose first byte is in [start, end) of the body."""

    start: int
    end: int


def part_ranges(header_bytes: int, size: int, parts: int, min_part_bytes: int) -> list[ByteRange]:
    """Split the records after the header into at most `parts` ranges of >= `min_part_bytes`."""
    records = size - header_bytes
    count = max(1, min(parts, records // max(1, min_part_bytes)))
    bounds = [header_bytes + records * i // count for i in range(count + 1)]
    return [ByteRange(a, b) for a, b in pairwise(bounds) if b > a]


class PartCutter:
    """Turns the bytes of a body from offset `start - 1` on into exactly one part's records.

    Feed consecutive pieces with `take`; it returns the bytes to count and sets `done` once the
    part's last record is complete (the caller can then stop reading). `first_offset` is where
    the bytes must begin: the byte before the range.
    """

    def __init__(self, part: ByteRange) -> None:
        if part.start < 1:
            raise ValueError("a part starts after the header, so never at byte 0")
        self.part = part
        self.first_offset = part.start - 1
        self.offset = self.first_offset  # absolute offset of the next byte to take
        self.started = False  # whether we are inside the part's records
        self.done = False
        self.saw_quote = False

    def take(self, piece: bytes) -> bytes:
        """The records' bytes in `piece` (which starts at `self.offset`)."""
        if self.done or not piece:
            return b""
        base = self.offset
        self.offset += len(piece)
        begin = 0
        if not self.started:
            # The first record boundary at or after the byte before our start.
            newline = piece.find(b"\n")
            if newline < 0:
                return b""
            first_record = base + newline + 1
            if first_record >= self.part.end:
                self.done = True  # no record starts inside this range
                return b""
            self.started = True
            begin = newline + 1
        # Our last record ends at the first newline at or after byte end - 1.
        stop_from = max(begin, self.part.end - 1 - base)
        newline = piece.find(b"\n", stop_from) if stop_from < len(piece) else -1
        if newline >= 0:
            self.done = True
            chunk = piece[begin : newline + 1]
        else:
            chunk = piece[begin:]
        if b'"' in chunk:
            self.saw_quote = True
        return chunk
