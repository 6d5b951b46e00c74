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

NO_PATIENT = ""
"""The patient_id under which a resource that names no patient is counted (NDJSON): such counts
are in the totals but under no patient, and `without_patient` lists them for the user. No CSV row
can have it (an empty patient_id is a bad row), so CSV reports never change."""


class Tally:
    """Counts of events per (patient_id, event_type).

    Invariant: every stored count is a positive int, so two tallies that count the same events
    compare equal, and the report lists only patients and event types that occur.

    `labels` gives some event types a text for people (an NDJSON code's display, `8867-4` ->
    `Heart rate`); CSV tallies have none. Merging keeps, per event type, the smallest text in
    code point order, so the result does not depend on the order of merging.
    """

    __slots__ = ("_counts", "_labels")

    _counts: dict[Key, int]
    _labels: dict[str, str]

    def __init__(
        self, counts: Mapping[Key, int] | None = None, labels: Mapping[str, str] | None = None
    ) -> None:
        """Build a tally from a mapping of counts; zero counts are dropped.

        Raises ValueError for a negative count or one that is not an int, or a label that is
        not a str.
        """
        clean: dict[Key, int] = {}
        for key, n in (counts or {}).items():
            # bool is an int subclass; True is not a count anyone means to pass.
            if not isinstance(n, int) or isinstance(n, bool) or n < 0:
                raise ValueError(f"count for {key!r} must be a non-negative int, got {n!r}")
            if n:
                clean[key] = n
        self._counts = clean
        self._labels = {}
        for event_type, label in (labels or {}).items():
            if not isinstance(event_type, str) or not isinstance(label, str):
                raise ValueError(f"label {event_type!r}: {label!r} must map a str to a str")
            self._labels[event_type] = label

    @classmethod
    def _trusted(cls, counts: dict[Key, int], labels: dict[str, str] | None = None) -> Tally:
        """Wrap a dict already known to hold only positive ints, without copying it."""
        tally = cls.__new__(cls)
        tally._counts = counts
        tally._labels = labels if labels is not None else {}
        return tally

    @property
    def counts(self) -> Mapping[Key, int]:
        """A read-only view of the counts."""
        return MappingProxyType(self._counts)

    @property
    def labels(self) -> Mapping[str, str]:
        """A read-only view of the event types' texts for people (empty for CSV tallies)."""
        return MappingProxyType(self._labels)

    @property
    def without_patient(self) -> dict[str, int]:
        """Counts per event type of the resources that named no patient (`NO_PATIENT`), for
        the user to be told; they are in the report's totals, under no patient."""
        return {e: n for (p, e), n in self._counts.items() if p == NO_PATIENT}

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
        `json.dumps`; dict order is unspecified (callers that print it sort the keys). Counts
        under `NO_PATIENT` are in the totals only.
        """
        patients: dict[str, dict[str, int]] = {}
        totals: dict[str, int] = {}
        for (patient_id, event_type), n in self._counts.items():
            if patient_id != NO_PATIENT:
                patients.setdefault(patient_id, {})[event_type] = n
            totals[event_type] = totals.get(event_type, 0) + n
        return {"patients": patients, "totals": totals}

    def __len__(self) -> int:
        """The number of distinct (patient_id, event_type) keys."""
        return len(self._counts)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tally):
            return NotImplemented
        return self._counts == other._counts and self._labels == other._labels

    def __repr__(self) -> str:
        labels = f", labels={dict(sorted(self._labels.items()))!r}" if self._labels else ""
        return f"Tally({dict(sorted(self._counts.items()))!r}{labels})"

    def __reduce__(
        self,
    ) -> tuple[type[Tally], tuple[dict[Key, int]] | tuple[dict[Key, int], dict[str, str]]]:
        # Pickle as the constructor call: small, and re-checked on the receiving side.
        if self._labels:
            return (self.__class__, (self._counts, self._labels))
        return (self.__class__, (self._counts,))


def merge_tallies(*tallies: Tally) -> Tally:
    """Add tallies key by key; with no arguments, the empty tally (the identity). Labels: the
    smallest text per event type."""
    merged: dict[Key, int] = {}
    labels: dict[str, str] = {}
    for tally in tallies:
        for key, n in tally._counts.items():
            merged[key] = merged.get(key, 0) + n
        for event_type, label in tally._labels.items():
            known = labels.get(event_type)
            if known is None or label < known:
                labels[event_type] = label
    return Tally._trusted(merged, labels)
