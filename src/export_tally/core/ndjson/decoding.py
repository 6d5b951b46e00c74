"""Bytes to Resources: a list of lines at once where that is proved exact, else line by line.

The reference is the stdlib: a line is decoded as UTF-8 (strict), then by `json.loads`, and
`resources.resource_from_json` reads the result. The fast path must give the same Resource for
every line it takes, and decline (so the line goes the reference's way) whenever it cannot be
sure. msgspec decodes each line into a typed Struct (`CodeResource` or `TextResource`), reading only
the fields the key mode needs and skipping the rest (in C, without building them). What it takes is exact because:

- Every line is one `decode` call on the line's bytes, so a line is one JSON value: two values
  on a line, or a value spread over two, fail as they do for `json.loads`.
- msgspec does not check UTF-8 inside the strings it skips, so the lines are checked first
  (`isascii`, else a strict `decode`); lines with invalid UTF-8 go one by one, where such
  a line is a bad row, as for the reference.
- On valid UTF-8, msgspec accepts a subset of what `json.loads` accepts: both refuse control
  characters in strings, bad escapes, leading zeros, trailing commas and garbage after the
  value; `json.loads` also takes `NaN`, `Infinity` and lone surrogate escapes (`\\ud800`), which
  msgspec refuses: such a line is declined and goes the reference's way. Escapes (`\\u00e9`,
  `\\"`, `\\/`) decode to the same text. Nesting deeper than either decoder's limit is refused by
  both (RecursionError); `tests/unit/test_ndjson_decoding.py` pins where.
- A number of more than 4,300 digits is valid JSON that msgspec skips and `json.loads` refuses
  (Python's limit on int conversion): the full decoder reads integers as floats, which no rule
  reads anyway.
- A repeated key: both keep the last one (`{"code": {...}, "code": null}` has no code).
- A field of another JSON type than the Struct's (a `subject` that is a string, a coding that
  is not an object) fails the Struct's validation: the line is declined, and the reference reads
  it (as absent, by the rules). A field the Struct leaves out (the display in key mode "code")
  is not looked at: the rules do not read it for the key either.
- Only top-level fields are read: a `subject` or `code` inside an `extension`, a `contained`
  resource or any other field is skipped, as the reference's `dict.get` ignores it.

A declined line is decoded again by msgspec with its `id` (`IdentifiedResource`) when it is
valid and well typed, else by the reference itself.
"""

from __future__ import annotations

import json
from collections import deque
from functools import lru_cache
from typing import Any, Final

import msgspec

from export_tally.core.ndjson.resources import (
    FastResource,
    IdentifiedResource,
    KeyMode,
    fast_form,
    resource_from_json,
)

_IDENTIFIED: Final = msgspec.json.Decoder(IdentifiedResource)
DECLINED: Final = (msgspec.DecodeError, RecursionError)
"""What msgspec raises for a line it does not take (ValidationError is a DecodeError)."""


@lru_cache(maxsize=16)
def fast_decoder(mode: KeyMode, types: frozenset[str] | None) -> msgspec.json.Decoder[Any]:
    """The decoder of `resources.fast_form(mode, types)`, made once."""
    return msgspec.json.Decoder(fast_form(mode, types))


def decode_lines(
    lines: list[bytes], decoder: msgspec.json.Decoder[Any], ascii: bool
) -> list[FastResource] | None:
    """The fast form of every line's resource (its LF is JSON whitespace), in order, by
    `decoder` (a `fast_decoder`); None when any line needs the line-by-line path: invalid
    UTF-8, a blank line, or a line msgspec does not take. `ascii`: the lines are known to be
    ASCII."""
    if not ascii:
        try:
            deque(map(bytes.decode, lines), maxlen=0)  # strict UTF-8, in C
        except UnicodeDecodeError:
            return None
    try:
        resources: list[FastResource] = list(map(decoder.decode, lines))  # blank: raises
    except DECLINED:
        return None
    return resources


def decode_line(line: bytes) -> IdentifiedResource | str:
    """The Resource of one line (not blank; its LF, if any, is not part of it), or why it is a
    bad row."""
    line = line.removesuffix(b"\n")  # so that a column in a message counts on this line
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as error:
        return f"not valid UTF-8 (byte {error.start + 1})"
    try:
        return _IDENTIFIED.decode(line)
    except DECLINED:
        pass  # the reference decides
    try:
        # parse_int: Python refuses to make an int of more than 4,300 digits (ValueError), but
        # such a number is valid JSON, which msgspec skips; no rule reads a number.
        value = json.loads(text, parse_int=float)
    except json.JSONDecodeError as error:
        return f"not valid JSON ({error.msg} at column {error.colno})"
    except RecursionError:
        return "not valid JSON (nested too deeply)"
    return resource_from_json(value)
