"""HTTP Range requests: parse one `bytes=` range of the kinds a resuming client sends."""

from __future__ import annotations

import re
from dataclasses import dataclass

from export_server.errors import UnsatisfiableRangeError

__all__ = ["RangeAnswer", "UnsatisfiableRangeError", "answer_range", "parse_range", "resolve_range"]

_SINGLE_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$")


def parse_range(header: str | None) -> tuple[int, int | None] | None:
    """(first, last or None) of a single range, or None when absent or not understood.

    A suffix range (`bytes=-500`) comes back as (-500, None). Multiple ranges are not understood:
    serving the whole body instead is what RFC 9110 allows.
    """
    if not header:
        return None
    match = _SINGLE_RANGE.match(header)
    if not match or (not match.group(1) and not match.group(2)):
        return None
    first, last = match.group(1), match.group(2)
    if not first:
        return (-int(last), None)
    if last and int(last) < int(first):
        return None
    return (int(first), int(last) if last else None)


def resolve_range(spec: tuple[int, int | None], size: int) -> tuple[int, int]:
    """The [start, stop) byte span a parsed range selects in a body of `size` bytes."""
    first, last = spec
    if first < 0:
        if size == 0:
            raise UnsatisfiableRangeError
        return (max(0, size + first), size)
    if first >= size:
        raise UnsatisfiableRangeError
    stop = size if last is None else min(size, last + 1)
    return (first, stop)


@dataclass(frozen=True)
class RangeAnswer:
    """What to send of a body for a request: bytes [start, stop), with `status` (200, 206, or 416
    with nothing) and the `headers` that say so (Content-Range, Content-Length)."""

    start: int
    stop: int
    status: int
    headers: dict[str, str]


def answer_range(spec: tuple[int, int | None] | None, size: int) -> RangeAnswer:
    """The answer to a parsed range (None: the whole body) of a body of `size` bytes."""
    if spec is None:
        return RangeAnswer(0, size, 200, {"Content-Length": str(size)})
    try:
        start, stop = resolve_range(spec, size)
    except UnsatisfiableRangeError:
        return RangeAnswer(0, 0, 416, {"Content-Range": f"bytes */{size}"})
    span = {
        "Content-Range": f"bytes {start}-{stop - 1}/{size}",
        "Content-Length": str(stop - start),
    }
    return RangeAnswer(start, stop, 206, span)
