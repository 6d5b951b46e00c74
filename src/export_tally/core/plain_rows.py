"""The one proof that a quote-free block is all good rows, shared by every fast path.

A row regex is built from the header (`row_pattern`): one field pattern per column, joined by
commas, anchored at a line start and ended by a newline, so a match is one whole line with the
header's field count. `match_rows` accepts a block only when the regex matches as many times as
the block has lines, and the block reads as csv.reader would read it (`is_plain_text`): then every
line is a row, and the regex's groups are the fields a parser wants, per row, made in C.

Key fields must be non-empty (`KEY`); a last column may end with the CR of a CRLF line end.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

KEY = rb"[^,]+"
"""A field that must not be empty: patient_id and event_type."""
ANY = rb"[^,]*"
"""A field that may be empty."""


def row_pattern(
    width: int, fields: Mapping[int, bytes], groups: Sequence[range]
) -> re.Pattern[bytes]:
    """The regex of one plain row of `width` columns.

    `fields[k]` is the pattern of column k (ANY if absent), a character class repeated, without
    the comma; `groups` are runs of adjacent columns, each captured as one group (commas
    included), in column order.
    """
    starts = {run.start for run in groups}
    ends = {run.stop - 1 for run in groups}
    parts = []
    for k in range(width):
        field = fields.get(k, ANY)
        if k == width - 1:  # the last field stops before a line end (CR of CRLF, or LF)
            field = field.replace(b"[^,", b"[^,\\r\\n", 1)
        if k in starts:
            field = b"(" + field
        if k in ends:
            field += b")"
        parts.append(field)
    return re.compile(rb"(?m)^" + b",".join(parts) + rb"\r?\n")


def match_rows(pattern: re.Pattern[bytes], block: bytes, lines: int) -> list[Any] | None:
    """The groups of every row of a quote-free block of `lines` whole lines, or None unless
    every line is a good row.

    `^` makes every match start at a line start, and each ends at a newline: as many matches as
    lines means each line is one whole match, with the right field count.
    """
    if not is_plain_text(block):
        return None
    rows: list[Any] = pattern.findall(block)
    return rows if len(rows) == lines else None


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
