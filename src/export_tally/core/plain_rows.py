"""The one proof that a quote-free block is all good rows, shared by every fast path.

`plain_fields` proves, with a few passes over the bytes in C and no per-row Python, that every
line of a block is a row as csv.reader would read it with the header's field count, and hands
back all the fields, row after row, made by one `bytes.split`:

- the block, with every byte but `,` and LF deleted, must be exactly `,` x (width - 1) then LF,
  once per line. That rules out a wrong field count and a blank line;
- every CR must be followed by LF (csv ends a record at a bare CR), and the block must be valid
  UTF-8 (a row with invalid UTF-8 is bad);
- then CRs are deleted, LFs become commas, and one split on `,` gives every field.

Empty and single-byte `bytes` are shared by CPython, so the split makes no object for them.
What the proof leaves to the parser: that key fields are not empty, checked once per distinct
key, and whatever the parser itself requires of a field (the stats rules).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

_NOT_SEPARATORS = bytes(sorted(set(range(256)) - set(b",\n")))
_LF_TO_COMMA = bytes.maketrans(b"\n", b",")


@dataclass(frozen=True, slots=True)
class PlainFields:
    """Every field of a block of `rows` rows of `width` fields: field k of row i is
    `fields[i * width + k]`."""

    fields: list[bytes]
    width: int
    rows: int

    def column(self, k: int) -> list[bytes]:
        """Field k of every row, in row order."""
        return self.fields[k : self.width * self.rows : self.width]


def plain_fields(block: bytes, width: int) -> PlainFields | None:
    """The fields of a quote-free block of whole lines, or None unless every line is a row of
    `width` fields in valid UTF-8, ended by LF or CRLF."""
    separators = block.translate(None, _NOT_SEPARATORS)
    shape = _row_shape(width)
    rows, extra = divmod(len(separators), len(shape))
    if extra or separators != shape * rows:
        return None
    crlf = b"\r" in block
    if crlf and block.count(b"\r") != block.count(b"\r\n"):
        return None
    if not block.isascii():
        try:
            block.decode("utf-8")
        except UnicodeDecodeError:
            return None
    fields = block.translate(_LF_TO_COMMA, b"\r") if crlf else block.translate(_LF_TO_COMMA)
    return PlainFields(fields.split(b","), width, rows)


@cache
def _row_shape(width: int) -> bytes:
    """What is left of one row when all but its commas and its LF is deleted."""
    return b"," * (width - 1) + b"\n"
