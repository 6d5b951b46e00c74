"""Statistics of Observations' values and times per (patient_id, key): `--stats` on NDJSON.

The same `Stats` as the CSV path (`core/stats.py`): per key the count, exact sum, min and max of
`valueQuantity.value`, the anomalies outside the key's normal range (`NORMAL_RANGES`, by key:
the server's `code.text` is the CSV event type, so key mode "text" finds the ranges), and the
earliest and latest `effectiveDateTime`. Patient and key follow the counting rules
(`resources.judge`). A number keeps its form, as in the CSV path: an integer's text is an int,
any other (`72.5`, `1e2`) an exact Fraction.

Bad rows, besides the counting rules': a resource that is not an Observation, an Observation
without a JSON number in `valueQuantity.value`, or without an `effectiveDateTime` that is an
ISO 8601 time with a UTC offset. Lines go one by one (msgspec's typed Struct, else `json.loads`
reading numbers as their text), which is simple and exact; this path has no batch fast path yet.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import TYPE_CHECKING

import msgspec

from export_tally.core.ndjson.lines import DEFAULT_MAX_LINE_BYTES, BadRowMode, LineParser, is_blank
from export_tally.core.ndjson.resources import (
    IdentifiedResource,
    KeyMode,
    judge,
    resource_from_json,
)
from export_tally.core.stats.aggregate import (
    KeyStats,
    Number,
    Stats,
    higher,
    is_anomaly,
    lower,
)

if TYPE_CHECKING:
    from export_tally.core.counts.tally import Key

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class _Quantity(msgspec.Struct, gc=False):
    value: msgspec.Raw = msgspec.Raw(b"")


class _Measured(msgspec.Struct, gc=False):
    effectiveDateTime: str | None = None  # the FHIR name, which msgspec matches
    valueQuantity: _Quantity | None = None


_MEASURED = msgspec.json.Decoder(_Measured)
_IDENTIFIED = msgspec.json.Decoder(IdentifiedResource)


class _NumberText(str):
    """The text of a JSON number, as `json.loads` hands it to parse_int and parse_float."""


def number_of(text: str) -> Number:
    """The exact value of a JSON number's text: int for an integer, else a Fraction."""
    if any(c in text for c in ".eE"):
        return Fraction(text)
    return int(text)


def instant_of(text: str) -> int | None:
    """Microseconds since the epoch of an ISO 8601 time with an offset, or None."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.utcoffset() is None:
        return None
    return (moment - _EPOCH) // _MICROSECOND


def read_line(line: bytes) -> tuple[IdentifiedResource, str | None, str | None] | str:
    """A line's resource, its effectiveDateTime and its value's number text; or why it is a
    bad row. msgspec when it takes the line (and it is valid UTF-8), else `json.loads`. Its
    LF, if any, is not part of it."""
    line = line.removesuffix(b"\n")  # so that a column in a message counts on this line
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as error:
        return f"not valid UTF-8 (byte {error.start + 1})"
    try:
        resource, measured = _IDENTIFIED.decode(line), _MEASURED.decode(line)
    except (msgspec.DecodeError, RecursionError):
        return _read_json(text)
    raw = measured.valueQuantity.value if measured.valueQuantity is not None else b""
    value = bytes(raw).decode("ascii") if raw else None
    if value is not None and not (value[0] == "-" or value[0].isdigit()):
        value = None  # a string, object, array, true, false or null: no number
    return resource, measured.effectiveDateTime, value


def _read_json(text: str) -> tuple[IdentifiedResource, str | None, str | None] | str:
    try:
        value = json.loads(text, parse_int=_NumberText, parse_float=_NumberText)
    except json.JSONDecodeError as error:
        return f"not valid JSON ({error.msg} at column {error.colno})"
    except RecursionError:
        return "not valid JSON (nested too deeply)"
    resource = resource_from_json(value)
    if isinstance(resource, str):
        return resource
    time = value.get("effectiveDateTime")
    quantity = value.get("valueQuantity")
    number = quantity.get("value") if isinstance(quantity, dict) else None
    return (
        resource,
        time if isinstance(time, str) and not isinstance(time, _NumberText) else None,
        str(number) if isinstance(number, _NumberText) else None,
    )


class _Sums:
    __slots__ = ("anomalies", "count", "first", "high", "key", "last", "low", "sum")

    def __init__(self, key: str, value: Number, micros: int) -> None:
        self.key = key
        self.count = 0
        self.sum: Number = 0
        self.low = self.high = value
        self.anomalies = 0
        self.first = self.last = micros

    def add(self, value: Number, micros: int) -> None:
        self.count += 1
        self.sum += value
        self.low = lower(self.low, value)
        self.high = higher(self.high, value)
        self.anomalies += is_anomaly(self.key, value)
        self.first = min(self.first, micros)
        self.last = max(self.last, micros)


class NdjsonStatsParser(LineParser[Stats]):
    """Statistics of Observations' values and times per (patient_id, key) in an NDJSON body
    fed as chunks of bytes; `key_mode` and `on_bad_row` as for NdjsonCountingParser."""

    def __init__(
        self,
        key_mode: KeyMode = "code",
        on_bad_row: BadRowMode = "fail",
        *,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    ) -> None:
        if key_mode not in ("code", "text"):
            raise ValueError(f"key_mode must be 'code' or 'text', not {key_mode!r}")
        super().__init__(on_bad_row=on_bad_row, max_line_bytes=max_line_bytes)
        self._mode: KeyMode = key_mode
        self._sums: dict[Key, _Sums] = {}

    def _take_lines(self, lines: list[bytes], first_line: int, ascii: bool) -> int:
        rows = 0
        for index, line in enumerate(lines):
            if is_blank(line):
                continue
            rows += 1
            reason = self._take(line)
            if reason is not None:
                self._bad_rows.reject(first_line + index, reason)
        return rows

    def _take(self, line: bytes) -> str | None:
        """Add one line's value; or say why it is a bad row."""
        read = read_line(line)
        if isinstance(read, str):
            return read
        resource, time, value = read
        verdict = judge(resource, self._mode, frozenset({"Observation"}))
        if isinstance(verdict, str):
            return verdict
        if value is None:
            return "Observation has no number in valueQuantity.value"
        micros = instant_of(time) if time is not None else None
        if micros is None:
            return "Observation has no effectiveDateTime with a time and a UTC offset"
        patient, key, _ = verdict
        number = number_of(value)
        sums = self._sums.get((patient, key))
        if sums is None:
            sums = self._sums[patient, key] = _Sums(key, number, micros)
        sums.add(number, micros)
        return None

    def _aggregate(self) -> Stats:
        return Stats(
            {
                key: KeyStats(s.count, s.sum, s.low, s.high, s.anomalies, s.first, s.last)
                for key, s in self._sums.items()
            }
        )
