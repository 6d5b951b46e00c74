"""The proofs that a quote-free block is all good rows, shared by every fast path.

Both prove, with a few passes over the bytes in C and no per-row Python, that every line of a
block is a row as csv.reader would read it with the header's field count; every CR must be
followed by LF (csv ends a record at a bare CR), and the block must be valid UTF-8 (a row with
invalid UTF-8 is bad). One `bytes.split` makes all the fields.

`plain_fields` hands back every field, for parsers that read them all (the stats). Every line end
(LF, or CRLF) becomes a field of its own, `,\\n,`. No field but those holds an LF, so if every
(width + 1)-th field is an LF and there are as many of them as the block has LFs, every line has
exactly `width` fields. That rules out a wrong field count and a blank line (one field, and the
header has four at least). Single-byte `bytes` are shared by CPython, so the LF fields cost no
object, and the count of them compares pointers first. With `keep_line_ends`, each line end
becomes `\\n,` instead: each row's last field keeps its LF (`72\\n`), and a row costs no LF field.
The proof then ends with the parser, which must check that every row's last field ends with an
LF (once per distinct entry, with `count_checked`): those are then all the block's LFs (each is
right before a comma, so at the end of a field), and every line has `width` fields.

`plain_keys` hands back only the key of each row: its two key fields joined by an LF, the one
further right first (`b"type\\npatient"` in the usual column order): one object to hash and
compare where a pair is two. When the first column holds a key, each line end becomes `,\\n`
instead: the LF starts the next row's first field, so that field, glued to the row's other key
field, is the key, and a row costs no LF field. The proof then ends with the parser, which must
check each distinct key with `key_fields` (through `count_checked`): when every row's first field
starts with an LF, those are all the block's LFs (each is right after a comma, so at the start of
a field), no other field holds one, and every line has `width` fields.

What the proofs leave to the parser: the checks above, and whatever the parser itself requires
of a field (the stats rules). `count_checked` makes them once per distinct key or entry: it counts
a block's keys in a Counter (in C, per row) and checks only those new to the Counter (every other
one passed when it was new); if one fails, it undoes the count, and the block is declined.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain, islice
from operator import add
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from collections import Counter
    from collections.abc import Callable, Iterable, Iterator

T = TypeVar("T")

_LF_FIELD = b",\n,"
_LF_ENDS_FIELD = b"\n,"
_LF_STARTS_FIELD = b",\n"


@dataclass(frozen=True, slots=True)
class PlainFields:
    """Every field of a block of `rows` rows of `width` fields (`plain_fields`' argument): field
    k of row i is `fields[i * stride + k]`. With a stride of width + 1, each row is followed by a
    field holding its line end; with a stride of width, its last field ends with it."""

    fields: list[bytes]
    rows: int
    stride: int

    def column(self, k: int) -> list[bytes]:
        """Field k of every row, in row order."""
        return self.fields[k : self.stride * self.rows : self.stride]


def plain_fields(block: bytes, width: int, *, keep_line_ends: bool = False) -> PlainFields | None:
    """The fields of a quote-free block of whole lines, or None unless every line is a row of
    `width` fields in valid UTF-8, ended by LF or CRLF; with `keep_line_ends`, provided that the
    last field of every row ends with an LF (which the caller checks)."""
    lines = _without_crlf(block)
    if lines is None:
        return None
    if keep_line_ends:
        text = lines.replace(b"\n", _LF_ENDS_FIELD)
        fields = text.split(b",")  # the rows' fields, then what follows the last LF
        rows = len(text) - len(lines)  # one byte longer per LF
        if len(fields) != width * rows + 1 or fields[-1]:
            return None
        return PlainFields(fields, rows, width) if _is_utf8(lines) else None
    text = lines.replace(b"\n", _LF_FIELD)
    fields = text.split(b",")  # the rows' fields and line ends, then what follows the last LF
    stride = width + 1
    rows, extra = divmod(len(fields), stride)
    # The text is 2 bytes longer than the block per LF: O(1), where counting LFs is a pass.
    if extra != 1 or fields[-1] or len(text) - len(lines) != 2 * rows:
        return None
    if fields[width::stride].count(b"\n") != rows:
        return None
    return PlainFields(fields, rows, stride) if _is_utf8(lines) else None


@dataclass(frozen=True, slots=True)
class PlainKeys:
    """The key of every row of a block, in row order (iterate as often as needed); see
    `plain_keys`."""

    rows: int
    _right: list[bytes]  # the right key field of each row (of rows 1.. when `_first` is set)
    _left: list[bytes]  # the left one; when `_first` is set, with its LF in front
    _first: bytes | None  # row 0's key, when the left key field is the first column

    def __iter__(self) -> Iterator[bytes]:
        if self._first is None:
            return map(b"\n".join, zip(self._right, self._left, strict=True))
        return chain((self._first,), map(add, self._right, self._left))


def plain_keys(block: bytes, width: int, left: int, right: int) -> PlainKeys | None:
    """The key of each row of a quote-free block of whole lines, field `right` + LF + field
    `left` (left < right), or None unless every line is a row of `width` fields in valid UTF-8,
    ended by LF or CRLF, provided that every distinct key passes `key_fields`."""
    if left != 0 or not block:
        plain = plain_fields(block, width)
        if plain is None:
            return None
        return PlainKeys(plain.rows, plain.column(right), plain.column(left), None)
    lines = _without_crlf(block)
    if lines is None:
        return None
    text = lines.replace(b"\n", _LF_STARTS_FIELD)
    fields = text.split(b",")  # the rows' fields, then the last LF alone
    rows = len(text) - len(lines)  # one byte longer per LF
    if len(fields) != width * rows + 1 or fields[-1] != b"\n" or not _is_utf8(lines):
        return None
    end = width * rows
    first = fields[right] + b"\n" + fields[0]
    return PlainKeys(rows, fields[width + right : end : width], fields[width:end:width], first)


def key_fields(key: bytes) -> tuple[bytes, bytes] | None:
    """A key's right and left fields, or None unless it has an LF with a non-empty field on
    either side. (A key never holds a second LF: `plain_keys` puts one before a field, or
    between two fields that hold none.)"""
    right, _, left = key.partition(b"\n")
    return (right, left) if right and left else None


def count_checked(
    counts: Counter[bytes], items: Callable[[], Iterable[bytes]], check: Callable[[bytes], T | None]
) -> list[T] | None:
    """Count the keys `items()` gives into `counts`, and check each key new to `counts`.

    Returns what `check` made of the new keys (an empty list when there were none), or None when
    it failed one: `counts` is then as it was before (`items` is called a second time to undo the
    count). A key already in `counts` is not checked again: it passed when it was new.
    """
    known = len(counts)
    counts.update(items())
    if len(counts) == known:
        return []
    # Keys new to the Counter sit at its end (dicts keep insertion order).
    fresh = list(islice(reversed(counts), len(counts) - known))
    checked = []
    for key in fresh:
        result = check(key)
        if result is None:
            counts.subtract(items())  # leave no trace
            for new in fresh:
                del counts[new]
            return None
        checked.append(result)
    return checked


def _without_crlf(block: bytes) -> bytes | None:
    """The block with every CRLF made LF, or None if it has a CR not followed by LF (csv ends a
    record there, which no proof here allows for)."""
    if b"\r" not in block:
        return block
    if block.count(b"\r") != block.count(b"\r\n"):
        return None
    return block.translate(None, b"\r")


def _is_utf8(block: bytes) -> bool:
    if block.isascii():
        return True
    try:
        block.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
