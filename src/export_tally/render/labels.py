"""Event types shown with their text for people: `8302-2 (Body Height)` in tables and reports.

An NDJSON count keyed by code carries each code's display text (the aggregate's labels); a table
or a report shows both, a JSON or CSV answer only the code (the contract). The labelled names are
still server text: the table, the page and the charts escape them as they escape any.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping


def labelled(event_type: str, labels: Mapping[str, str]) -> str:
    """`code (display)` when the code has a display other than itself, else the code."""
    label = labels.get(event_type)
    return f"{event_type} ({label})" if label and label != event_type else event_type


def with_labels(report: dict[str, Any], labels: Mapping[str, str]) -> dict[str, Any]:
    """The report dict with every event type named with its label. Unchanged when there are no
    labels, or when two names would become one (then nothing is relabelled: no count merges)."""
    if not labels:
        return report
    names = {t: labelled(t, labels) for t in report["totals"]}
    if len(set(names.values())) != len(names):
        return report
    return {
        **report,
        "patients": {
            patient: {names[t]: v for t, v in values.items()}
            for patient, values in report["patients"].items()
        },
        "totals": {names[t]: v for t, v in report["totals"].items()},
    }
