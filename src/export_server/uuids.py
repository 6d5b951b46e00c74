"""A download id in a request path, parsed, or rejected with the exact reason the server has
always given.

The server used to be a FastAPI app, which parsed the id with pydantic-core, which parses with
Rust's `uuid` crate (1.2x). Its answer to an id that is not a UUID (422, `uuid_parsing`) quotes
that crate's reason word for word, and clients may have come to depend on it; so this module
accepts exactly the spellings the crate accepts (hyphenated, simple, `{braced}`,
`urn:uuid:`-prefixed; hex digits in either case) and words every rejection as it does, quirks
included: indices count UTF-8 bytes, and only the low byte of a character is looked at when
looking for the reason (so `š`, U+0161, passes for an `a`). Python's `uuid.UUID` accepts more
(`+`, `_`, hyphens anywhere), so it is used only once the spelling is known to be good.
`tests/integration/server_wire.json` pins the answers recorded from the FastAPI server.
"""

from __future__ import annotations

import uuid
from enum import Enum

from export_server.errors import InvalidUuidError

_HEX = frozenset(b"0123456789abcdefABCDEF")
_HYPHENS = (8, 13, 18, 23)
_GROUP_STARTS = (0, 9, 14, 19, 24)
_GROUP_LENGTHS = (8, 4, 4, 4, 12)
_URN = b"urn:uuid:"
_LONGEST_EXAMINED = 45  # longer inputs are rejected by their length alone


class _Form(Enum):
    ANY = "any"
    HYPHENATED = "hyphenated"
    BRACED = "braced"
    URN = "urn"


def parse_uuid(text: str) -> uuid.UUID:
    """The UUID `text` spells; InvalidUuidError (its message the crate's reason) if none."""
    data = text.encode()
    size = len(data)
    if size == 32 and _is_simple(data):
        return uuid.UUID(hex=text)
    if size == 36 and _is_hyphenated(data):
        return uuid.UUID(hex=text)
    if size == 38 and data[:1] == b"{" and data[-1:] == b"}":
        if _is_hyphenated(data[1:-1]):
            return uuid.UUID(hex=text[1:-1])
        raise InvalidUuidError(_reason(data[1:-1], _Form.HYPHENATED))
    if size == 45 and data.startswith(_URN):
        if _is_hyphenated(data[9:]):
            return uuid.UUID(hex=text[9:])
        raise InvalidUuidError(_reason(data[9:], _Form.HYPHENATED))
    raise InvalidUuidError(_reason(data, _Form.HYPHENATED if size == 36 else _Form.ANY))


def _is_simple(data: bytes) -> bool:
    return all(byte in _HEX for byte in data)


def _is_hyphenated(data: bytes) -> bool:
    return len(data) == 36 and all(
        (byte == 0x2D) if index in _HYPHENS else (byte in _HEX) for index, byte in enumerate(data)
    )


def _reason(data: bytes, form: _Form) -> str:
    """Why `data` (UTF-8) is no UUID, in the crate's words (its `InvalidUuid::into_err`)."""
    if not data or len(data) > _LONGEST_EXAMINED:
        return f"invalid length: found {len(data)}"
    start, stop = 0, len(data)
    if form is _Form.ANY and len(data) >= 2 and data[:1] == b"{" and data[-1:] == b"}":
        start, stop, form = 1, len(data) - 1, _Form.BRACED
    elif form is _Form.ANY and data.startswith(_URN):
        start, form = len(_URN), _Form.URN
    hyphens = 0
    bounds = [0, 0, 0, 0]  # where the first four hyphens are, from `start`
    index = 0
    for character in data[start:stop].decode():
        low = ord(character) & 0xFF
        if low == 0x2D:
            if form is _Form.ANY:
                form = _Form.HYPHENATED
            if hyphens < 4:
                bounds[hyphens] = index
            hyphens += 1
        elif low not in _HEX:
            return f"invalid character: found `{character}` at {index + start}"
        index += len(character.encode())
    if form is _Form.ANY:
        return f"invalid length: found {len(data)}"
    if hyphens != 4:
        return f"invalid group count: expected 5, found {hyphens + 1}"
    for group in range(4):
        if bounds[group] != _GROUP_STARTS[group + 1] - 1:
            return _group_length(group, bounds[group] - _GROUP_STARTS[group])
    return _group_length(4, len(data) - _GROUP_STARTS[4])


def _group_length(group: int, found: int) -> str:
    return f"invalid group length in group {group}: expected {_GROUP_LENGTHS[group]}, found {found}"
