"""The report dict reshaped for charts and tables: rankings, rows of plain dicts, the chart cut.

Pure functions of the report dict ({"patients": ..., "totals": ...}, see render.formats); the
charts get plain lists of dicts (what Vega-Lite reads inline), the tables get the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from export_tally.render.number_format import count_of, event_types_of

CHART_LIMIT = 50
"""Charts show at most this many patients, those with the most events; tables show them all."""


@dataclass(frozen=True)
class Cut:
    """The patients a chart shows (most events first) and how many it leaves out."""

    shown: tuple[str, ...]
    left_out: int


def ranked_patients(report: dict[str, Any], event_type: str | None = None) -> list[str]:
    """Patients with the most events first (of `event_type`, or of all types); ties by id."""
    patients = report["patients"]

    def events(patient_id: str) -> int:
        values = patients[patient_id]
        if event_type is not None:
            return count_of(values[event_type])
        return sum(count_of(v) for v in values.values())

    chosen = [p for p in patients if event_type is None or event_type in patients[p]]
    return sorted(chosen, key=lambda p: (-events(p), p))


def cut(ranked: list[str], limit: int = CHART_LIMIT) -> Cut:
    return Cut(tuple(ranked[:limit]), max(0, len(ranked) - limit))


def count_rows(
    report: dict[str, Any], patients: list[str] | tuple[str, ...]
) -> list[dict[str, Any]]:
    """{"patient", "event_type", "count"} for every pair that occurs, in the patients' order."""
    types = event_types_of(report)
    return [
        {"patient": p, "event_type": t, "count": count_of(report["patients"][p][t])}
        for p in patients
        for t in types
        if t in report["patients"][p]
    ]


def total_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """{"event_type", "count"} per event type, sorted by type."""
    return [
        {"event_type": t, "count": count_of(report["totals"][t])} for t in event_types_of(report)
    ]


def anomaly_rate(stats: dict[str, Any]) -> float | None:
    """Anomalies / count: 0 to 1; None for an event type with no normal range (not measured)."""
    if stats["anomalies"] is None:
        return None
    return float(stats["anomalies"]) / float(stats["count"])


def stats_rows(
    report: dict[str, Any], event_type: str, patients: list[str] | tuple[str, ...]
) -> list[dict[str, Any]]:
    """One event type's statistics per patient, with the anomaly rate, in the patients' order."""
    rows = []
    for patient_id in patients:
        s = report["patients"][patient_id][event_type]
        rows.append({"patient": patient_id, **s, "rate": anomaly_rate(s)})
    return rows


def by_anomaly_rate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Highest anomaly rate first; ties by patient id. Only for measured rates (not None)."""
    return sorted(rows, key=lambda r: (-r["rate"], r["patient"]))
