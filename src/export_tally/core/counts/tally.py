"""Exact, mergeable event counts: the value every download turns into.

A `Tally` is an immutable value. Merging never mutates its inputs, so partial tallies can be
combined in any grouping and order (per download, per worker process, per Dask worker) and give
the same answer. It pickles to little more than its count dict, because it is shipped back from
worker processes.

Counts are one of two aggregates a run can compute; the statistics of `--stats` are the other
(`stats.Stats`), with their own type. `aggregation` is where a run picks one.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

Key = tuple[str, str]
"""(patient_id, event_type)."""


class Tally:
    """Counts of events per (patient_id, event_type).

    Invariant: every stored count is a positive int, so two tallies that count the same events
    compare equal, and the report lists only patients and event types that occur.
    """

    __slots__ = ("_counts",)

    _counts: dict[Key, int]

    def __init__(self, counts: Mapping[Key, int] | None = None) -> None:
        """Build a tally from a mapping of counts; zero counts are dropped.

        Raises ValueError for a negative count or one that is not an int.
        """
        clean: dict[Key, int] = {}
        for key, n in (counts or {}).items():
            # bool is an int subclass; True is not a count anyone means to pass.
            if not isinstance(n, int) or isinstance(n, bool) or n < 0:
                raise ValueError(f"count for {key!r} must be a non-negative int, got {n!r}")
            if n:
                clean[key] = n
        self._counts = clean

    @classmethod
    def _trusted(cls, counts: dict[Key, int]) -> Tally:
        """Wrap a dict already known to hold only positive ints, without copying it."""
        tally = cls.__new__(cls)
        tally._counts = counts
        return tally

    @property
    def counts(self) -> Mapping[Key, int]:
        """A read-only view of the counts."""
        return MappingProxyType(self._counts)

    def count(self, patient_id: str, event_type: str) -> int:
        """How many events of this type this patient has (0 if none)."""
        return self._counts.get((patient_id, event_type), 0)

    @property
    def total(self) -> int:
        """The number of events counted, over all keys."""
        return sum(self._counts.values())

    def merge(self, other: Tally) -> Tally:
        """A new tally holding both tallies' counts added key by key."""
        return merge_tallies(self, other)

    def to_report(self) -> dict[str, Any]:
        """Counts per patient per event type, and totals per event type.

        Exactly {"patients": {pid: {event_type: n}}, "totals": {event_type: n}}, ready for
        `json.dumps`; dict order is unspecified (callers that print it sort the keys).
        """
        patients: dict[str, dict[str, int]] = {}
        totals: dict[str, int] = {}
        for (patient_id, event_type), n in self._counts.items():
            patients.setdefault(patient_id, {})[event_type] = n
            totals[event_type] = totals.get(event_type, 0) + n
        return {"patients": patients, "totals": totals}

    def __len__(self) -> int:
        """The number of distinct (patient_id, event_type) keys."""
        return len(self._counts)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tally):
            return NotImplemented
        return self._counts == other._counts

    def __repr__(self) -> str:
        return f"Tally({dict(sorted(self._counts.items()))!r})"

    def __reduce__(self) -> tuple[type[Tally], tuple[dict[Key, int]]]:
        # Pickle as the constructor call: small, and re-checked on the receiving side.
        return (self.__class__, (self._counts,))


def merge_tallies(*tallies: Tally) -> Tally:
    """Add tallies key by key; with no arguments, the empty tally (the identity)."""
    merged: dict[Key, int] = {}
    for tally in tallies:
        for key, n in tally._counts.items():
            merged[key] = merged.get(key, 0) + n
    return Tally._trusted(merged)
