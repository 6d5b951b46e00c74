"""The one proof that a quote-free block is all good rows, shared by every fast path.

`plain_fields` proves, with a few passes over the bytes in C and no per-row Python, that every
line of a block is a row as csv.reader would read it with the header's field count, and hands
back all the fields, row after row, made by one `bytes.split`:

- every line end (LF, or CRLF) becomes a field of its own, `,\\n,`, and one split on `,` gives
  every field. No field but those holds an LF, so if every (width + 1)-th field is an LF and
  there are as many of them as the block has LFs, every line has exactly `width` fields. That
  rules out a wrong field count and a blank line (one field, and the header has four at least);
- every CR must be followed by LF (csv ends a record at a bare CR), and the block must be valid
  UTF-8 (a row with invalid UTF-8 is bad).

Empty and single-byte `bytes` are shared by CPython, so the LF fields cost no object, and the
count of them compares pointers first. What the proof leaves to the parser: that key fields are
not empty, checked once per distinct key, and whatever the parser itself requires of a field
(the stats rules).
"""

from __future__ import annotations

from dataclasses import dataclass

_LF_FIELD = b",\n,"


@dataclass(frozen=True, slots=True)
class PlainFields:
    """Every field of a block of `rows` rows of `width` fields, each row followed by a field
    holding its line end: field k of row i is `fields[i * (width + 1) + k]`."""

    fields: list[bytes]
    width: int
    rows: int

    def column(self, k: int) -> list[bytes]:
        """Field k of every row, in row order."""
        stride = self.width + 1
        return self.fields[k : stride * self.rows : stride]


def plain_fields(block: bytes, width: int) -> PlainFields | None:
    """The fields of a quote-free block of whole lines, or None unless every line is a row of
    `width` fields in valid UTF-8, ended by LF or CRLF."""
    if b"\r" in block:
        if block.count(b"\r") != block.count(b"\r\n"):
            return None
        block = block.translate(None, b"\r")
    text = block.replace(b"\n", _LF_FIELD)
    fields = text.split(b",")  # the rows' fields and line ends, then what follows the last LF
    stride = width + 1
    rows, extra = divmod(len(fields), stride)
    # The text is 2 bytes longer than the block per LF: O(1), where counting LFs is a pass.
    if extra != 1 or fields[-1] or len(text) - len(block) != 2 * rows:
        return None
    if fields[width::stride].count(b"\n") != rows:
        return None
    if not block.isascii():
        try:
            block.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return PlainFields(fields, width, rows)
