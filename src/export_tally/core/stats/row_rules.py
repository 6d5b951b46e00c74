"""What a row must hold in stats mode, and the bulk checks the fast path makes of it in C.

The rules: `value` must be a decimal number (VALUE_PATTERN: `72`, `-3`, `72.5`, `+4`, `007`; not
`1e3`, ` 72`, `.5`, `72.` or empty), read exactly (`parse_value`); `event_time` must be an ISO 8601
time with a UTC offset or `Z`, as `datetime.fromisoformat` reads it (`parse_instant`), compared as
an instant in integer microseconds since the epoch. A time without an offset names no instant.

The fast path gets a quote-free block's fields from `fast_path`. What that proof leaves open is
checked in bulk:

- an *entry* (a row's patient_id, event_type and value, joined by commas) is checked once, when
  it first enters the Counter that counts entries (`entry_key`: non-empty keys, a decimal value,
  and the line end the value keeps when it is the last column, which ends `fast_path`' proof);
- event times are checked together by `fixed_width_times` and `real_hours`, with byte
  operations over all of a block's times at once.

Event times are taken in the form `datetime.isoformat` gives a UTC time,
`2025-08-26T00:00:07.123456Z`, and `...T00:00:07Z` when the microseconds are zero, which is
widened to `...T00:00:07.000000Z`. In that fixed-width form, byte order is time order. Any other
form (another offset, fewer digits) is left to the csv path, which parses it for real.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from functools import cache
from operator import itemgetter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from export_tally.core.stats.aggregate import Number

NARROW = len(b"2025-08-26T00:00:07Z")

VALUE_PATTERN = r"[-+]?[0-9]+(?:\.[0-9]+)?"
"""A value in stats mode: a decimal number (`72`, `-3`, `72.5`, `+4`, `007`)."""

VALUE_TEXT = re.compile(VALUE_PATTERN)
_ENTRY = re.compile(b"([^,]+),([^,]+)," + VALUE_PATTERN.encode())
_ENTRY_ENDING_LINE = re.compile(b"([^,\n]+),([^,\n]+)," + VALUE_PATTERN.encode() + b"\n")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_KNOWN_HOURS_KEPT = 4096
_ZERO_DIGITS = bytes.maketrans(b"0123456789", b"0" * 10)
_SHAPE = b"0000-00-00T00:00:00.000000Z,"  # a wide time, then the comma that joins it
_SPACED = len(_SHAPE)
_TENS = b"012345"  # what the tens digit of a minute or a second may be
_HOUR = itemgetter(slice(0, 13))  # 2025-08-26T00


def parse_value(text: str) -> Number | None:
    """The exact number `text` writes (int, or Fraction for decimal text), or None."""
    if VALUE_TEXT.fullmatch(text) is None:
        return None
    return value_of(text)


def value_of(text: str) -> Number:
    """The exact number of text that VALUE_PATTERN matches: int, or Fraction if it has a dot."""
    whole, dot, fraction = text.partition(".")
    if not dot:
        return int(text)
    return Fraction(int(whole + fraction), 10 ** len(fraction))


def parse_instant(text: str) -> int | None:
    """Microseconds since the epoch of an ISO 8601 time with an offset, or None."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.utcoffset() is None:
        return None
    return (moment - _EPOCH) // _MICROSECOND


def instant_of(time: bytes) -> int:
    """Microseconds since the epoch of a time that `fixed_width_times` accepted."""
    return (datetime.fromisoformat(time.decode("ascii")) - _EPOCH) // _MICROSECOND


def entry_key(text: bytes, *, line_end: bool = False) -> tuple[bytes, bytes] | None:
    """(patient_id, event_type) of `patient_id,event_type,value` (fields without commas), or
    None unless both are non-empty and the value is a decimal number (VALUE_PATTERN); with
    `line_end`, of `patient_id,event_type,value\\n`, which must end with that one LF."""
    entry = (_ENTRY_ENDING_LINE if line_end else _ENTRY).fullmatch(text)
    return None if entry is None else (entry[1], entry[2])


def fixed_width_times(times: list[bytes]) -> list[bytes] | None:
    """The times, widened to fixed width, if every one has the shape of an isoformat UTC time.

    Checked all at once, on the times joined by commas (which no field holds, so a time of
    another length shifts every comma after it): digits where digits go and separators where
    they go (one translate and one compare), then minutes and seconds below 60 (the tens digits,
    read with one strided slice each). A narrow time (`...:07Z`) is widened first. Hours and
    dates: see `real_hours`.
    """
    if not times:
        return times
    size = _SPACED * len(times) - 1
    joined = b",".join(times)
    if len(joined) != size:
        times = [widened(t) if t[-1:] == b"Z" else t for t in times]
        joined = b",".join(times)
        if len(joined) != size:  # some time is neither wide nor narrow
            return None
    if not _shapes(1 << len(times).bit_length()).startswith(joined.translate(_ZERO_DIGITS)):
        return None
    if joined[14::_SPACED].translate(None, _TENS) or joined[17::_SPACED].translate(None, _TENS):
        return None
    return times


def widened(time: bytes) -> bytes:
    """A time ending in `Z` in fixed-width form: a narrow one (`...:07Z`) gets `.000000`."""
    return time[:-1] + b".000000Z" if len(time) == NARROW else time


def real_hours(times: list[bytes], in_order: bool, known: set[bytes]) -> bool:
    """Whether every time's date and hour (`2025-08-26T00`) exist; `known` caches good ones.

    In order, the hours come in runs, so one bisect jumps to the next distinct hour.
    """
    if len(known) > _KNOWN_HOURS_KEPT:
        known.clear()  # a cache: keep it small whatever the span of the data
    if in_order:
        i = 0
        while i < len(times):
            hour = times[i][:13]
            if hour not in known and not _is_hour(hour):
                return False
            known.add(hour)
            i = bisect_right(times, hour + b"\xff", i)  # past every time in that hour
        return True
    for hour in set(map(_HOUR, times)) - known:
        if not _is_hour(hour):
            return False
        known.add(hour)
    return True


@cache
def _shapes(count: int) -> bytes:
    """The shape of `count` times; built once per power of two, as blocks vary in length."""
    return _SHAPE * count


def _is_hour(text: bytes) -> bool:
    """Whether `2025-08-26T00` (digits already checked) is a real date and an hour below 24."""
    try:
        date.fromisoformat(text[:10].decode("ascii"))
    except ValueError:
        return False
    return int(text[11:13]) < 24
