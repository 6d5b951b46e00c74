"""Exact, mergeable statistics of `value` and `event_time`: what `--stats` turns a download into.

A `Stats` holds one `KeyStats` per (patient_id, event_type): the count, the exact sum, min and max
of the values, how many values lie outside the normal range (`NORMAL_RANGES`), and the earliest
and latest event time in integer microseconds since the epoch. An event type without a known
normal range reports its anomalies as unknown (null), not as zero: nobody measured them. Everything else is derived when
reporting, so partial `Stats` merge key by key with sums, mins and maxes: associative,
commutative, with `Stats()` as the identity, in any grouping and order.

Latency is the average gap between consecutive events in time order. Sorted by time, the gaps
of n events telescope to (latest - earliest), so the average is (latest - earliest) / (n - 1)
whatever order the events arrive in: it needs no sorting, no held events, and no trust in the
order of rows or downloads. Rows out of time order or downloads whose time ranges overlap
therefore still give the exact latency; the parser only uses the order, where it holds, to find
the earliest and latest times faster. The same holds for the totals, over all patients.

Values are exact: an int for integer text, a Fraction for decimal text (so "72.0" is kept apart
from "72" for printing), sums in int or Fraction arithmetic, never a float sum.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from export_tally.core.counts.tally import Key

Number = int | Fraction
"""An exact value: int for integer text, Fraction for decimal text."""

NORMAL_RANGES: Mapping[str, tuple[int, int]] = MappingProxyType(
    {
        "heart_rate": (40, 180),
        "spo2": (85, 100),
        "bp_sys": (90, 200),
        "bp_dia": (60, 120),
    }
)
"""Inclusive normal range per event type; a value outside it is an anomaly. Other types have no
range, so their anomalies are not known (counted as 0, reported as None)."""

JSON_FORMAT = "export-tally/stats/1"
MICROSECONDS = 1_000_000


@dataclass(frozen=True, slots=True)
class KeyStats:
    """The statistics of one (patient_id, event_type), or of one event type over all patients.

    Invariant: count >= 1, low <= high, 0 <= anomalies <= count, first <= last. `low` and
    `high` keep the form the value was written in (int or Fraction); between equal values the
    int wins, so the choice does not depend on merge order. Times are microseconds since the
    epoch (UTC).
    """

    count: int
    sum: Number
    low: Number
    high: Number
    anomalies: int
    first: int
    last: int

    def merge(self, other: KeyStats) -> KeyStats:
        """Both sets of events together."""
        return KeyStats(
            self.count + other.count,
            exact_sum(self.sum, other.sum),
            lower(self.low, other.low),
            higher(self.high, other.high),
            self.anomalies + other.anomalies,
            min(self.first, other.first),
            max(self.last, other.last),
        )

    def to_report(self, precision: int = 1, ranged: bool = True) -> dict[str, Any]:
        """{"count", "mean", "min", "max", "anomalies", "latency"}; see `Stats.to_report`.

        `ranged`: whether the event type has a normal range; if not, "anomalies" is None.
        """
        latency = None
        if self.count > 1:
            gap = Fraction(self.last - self.first, (self.count - 1) * MICROSECONDS)
            latency = rounded(gap, precision)
        return {
            "count": self.count,
            "mean": rounded(Fraction(self.sum) / self.count, precision),
            "min": as_json_number(self.low),
            "max": as_json_number(self.high),
            "anomalies": self.anomalies if ranged else None,
            "latency": latency,
        }


class Stats:
    """Statistics of `value` and `event_time` per (patient_id, event_type); immutable."""

    __slots__ = ("_entries",)

    _entries: dict[Key, KeyStats]

    def __init__(self, entries: Mapping[Key, KeyStats] | None = None) -> None:
        """Build from a mapping of keys to KeyStats.

        Raises ValueError when an entry breaks the KeyStats invariant or has the wrong types.
        """
        clean: dict[Key, KeyStats] = {}
        for key, entry in (entries or {}).items():
            _check_key(key)
            if not isinstance(entry, KeyStats):
                raise ValueError(f"stats for {key!r} must be a KeyStats, not {entry!r}")
            clean[key] = _checked(entry)
        self._entries = clean

    @classmethod
    def _trusted(cls, entries: dict[Key, KeyStats]) -> Stats:
        """Wrap a dict already known to be valid, without copying it."""
        stats = cls.__new__(cls)
        stats._entries = entries
        return stats

    @property
    def entries(self) -> Mapping[Key, KeyStats]:
        """A read-only view of the statistics per key."""
        return MappingProxyType(self._entries)

    @property
    def total(self) -> int:
        """The number of events, over all keys."""
        return sum(entry.count for entry in self._entries.values())

    def merge(self, other: Stats) -> Stats:
        """A new Stats holding both sets of events."""
        return merge_stats(self, other)

    def to_report(self, precision: int = 1) -> dict[str, Any]:
        """Statistics per patient per event type, and totals per event type over all patients.

        Exactly {"patients": {pid: {event_type: S}}, "totals": {event_type: S}}, where S is
        {"count", "mean", "min", "max", "anomalies", "latency"}, ready for `json.dumps`; dict
        order is unspecified. `mean` and `latency` (in seconds; None for fewer than two events)
        are rounded half to even from their exact values to `precision` decimal places, then
        given as the float nearest to that (an int when precision <= 0). `min` and `max` are
        as written: an int for integer text, the nearest float for decimal text. `anomalies`
        is None for an event type without a normal range (not in NORMAL_RANGES).
        """
        patients: dict[str, dict[str, Any]] = {}
        per_type: dict[str, KeyStats] = {}
        for (patient_id, event_type), entry in self._entries.items():
            ranged = event_type in NORMAL_RANGES
            patients.setdefault(patient_id, {})[event_type] = entry.to_report(precision, ranged)
            seen = per_type.get(event_type)
            per_type[event_type] = entry if seen is None else seen.merge(entry)
        totals = {
            name: entry.to_report(precision, name in NORMAL_RANGES)
            for name, entry in per_type.items()
        }
        return {"patients": patients, "totals": totals}

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict that `from_json` turns back into an equal Stats, exactly.

        {"format": JSON_FORMAT, "entries": [[patient_id, event_type, count, total, min, max,
        anomalies, first, last], ...]} sorted by key; an int stays a JSON int and a Fraction
        becomes its string ("145/2", or "72" for 72 written as 72.0).
        """
        return {
            "format": JSON_FORMAT,
            "entries": [
                [
                    *key,
                    entry.count,
                    _encode(entry.sum),
                    _encode(entry.low),
                    _encode(entry.high),
                    entry.anomalies,
                    entry.first,
                    entry.last,
                ]
                for key, entry in sorted(self._entries.items())
            ],
        }

    @classmethod
    def from_json(cls, data: Any) -> Stats:
        """The Stats that `to_json` gave `data`. Raises ValueError when `data` is not that."""
        if not isinstance(data, dict) or data.get("format") != JSON_FORMAT:
            raise ValueError(f"not stats in the {JSON_FORMAT} format")
        entries: dict[Key, KeyStats] = {}
        for item in _as_list(data.get("entries")):
            fields = _as_list(item)
            if len(fields) != 9:
                raise ValueError(f"a stats entry has 9 fields, not {len(fields)}")
            key = (fields[0], fields[1])
            _check_key(key)
            if key in entries:
                raise ValueError(f"stats entry {key!r} is repeated")
            count, total, low, high, anomalies, first, last = fields[2:]
            numbers = (_decode(total), _decode(low), _decode(high))
            entries[key] = KeyStats(count, *numbers, anomalies, first, last)
        return cls(entries)

    def __len__(self) -> int:
        """The number of distinct (patient_id, event_type) keys."""
        return len(self._entries)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Stats):
            return NotImplemented
        # Compare the JSON forms: 72 and Fraction(72) are == but print differently (72, 72.0).
        return self.to_json() == other.to_json()

    def __repr__(self) -> str:
        return f"Stats({dict(sorted(self._entries.items()))!r})"

    def __reduce__(self) -> tuple[type[Stats], tuple[dict[Key, KeyStats]]]:
        # Pickle as the constructor call: small, and re-checked on the receiving side.
        return (self.__class__, (self._entries,))


def merge_stats(*stats: Stats) -> Stats:
    """Merge Stats key by key; with no arguments, the empty Stats (the identity)."""
    merged: dict[Key, KeyStats] = {}
    for one in stats:
        for key, entry in one._entries.items():
            seen = merged.get(key)
            merged[key] = entry if seen is None else seen.merge(entry)
    return Stats._trusted(merged)


def is_anomaly(event_type: str, value: Number) -> bool:
    """Whether `value` lies outside the normal range of `event_type` (never, for other types)."""
    bounds = NORMAL_RANGES.get(event_type)
    return bounds is not None and not bounds[0] <= value <= bounds[1]


def exact_sum(a: Number, b: Number) -> Number:
    """a + b, as an int when it is a whole number (so equal sums have one JSON form)."""
    total = a + b
    if isinstance(total, Fraction) and total.denominator == 1:
        return total.numerator
    return total


def lower(a: Number, b: Number) -> Number:
    """The smaller value; between equal values, the int (the order of a and b does not matter)."""
    if a != b:
        return a if a < b else b
    return a if type(a) is int else b


def higher(a: Number, b: Number) -> Number:
    """The larger value; between equal values, the int (the order of a and b does not matter)."""
    if a != b:
        return a if a > b else b
    return a if type(a) is int else b


def rounded(value: Fraction, precision: int) -> float | int:
    """`value` rounded half to even to `precision` places: a float, or an int if precision <= 0."""
    exact = round(value, precision)
    return int(exact) if precision <= 0 else float(exact)


def as_json_number(value: Number) -> float | int:
    """An int as it is; a Fraction (decimal text) as the nearest float."""
    return value if type(value) is int else float(value)


def _check_key(key: Any) -> None:
    if not (
        isinstance(key, tuple)
        and len(key) == 2
        and all(isinstance(part, str) and part for part in key)
    ):
        raise ValueError(f"a stats key is (patient_id, event_type), not {key!r}")


def _checked(entry: KeyStats) -> KeyStats:
    """The entry with its total normalized, or ValueError if it breaks the invariant."""
    ints = (entry.count, entry.anomalies, entry.first, entry.last)
    if not all(type(n) is int for n in ints) or not all(
        type(n) is int or type(n) is Fraction for n in (entry.sum, entry.low, entry.high)
    ):
        raise ValueError(f"stats entry has the wrong types: {entry!r}")
    if not (
        entry.count >= 1
        and entry.low <= entry.high
        and 0 <= entry.anomalies <= entry.count
        and entry.first <= entry.last
    ):
        raise ValueError(f"stats entry is not consistent: {entry!r}")
    return replace(entry, sum=exact_sum(entry.sum, 0))


def _encode(value: Number) -> int | str:
    return value if type(value) is int else str(value)


def _decode(value: Any) -> Number:
    if type(value) is int:
        return value
    if isinstance(value, str):
        try:
            return Fraction(value)
        except (ValueError, ZeroDivisionError):
            pass
    raise ValueError(f"not an exact stats number: {value!r}")


def _as_list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"expected a JSON list, got {type(value).__name__}")
    return value
