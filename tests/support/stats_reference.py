"""A naive `--stats` report to test against: hold every row, sort by time, compute directly.

Shares nothing with export_tally but `datetime.fromisoformat`: its own CSV reading (csv.DictReader),
its own range table, exact Fraction arithmetic, latency as the mean of the actual gaps.
"""

from __future__ import annotations

import csv
import io
import itertools
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

RANGES = {"heart_rate": (40, 180), "spo2": (85, 100), "bp_sys": (90, 200), "bp_dia": (60, 120)}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Event = tuple[str, str, str, int]
"""(patient_id, event_type, value as written, microseconds since the epoch)."""


def events_of(body: bytes) -> list[Event]:
    """Every row of a valid body, in body order."""
    reader = csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline=""))
    return [
        (row["patient_id"], row["event_type"], row["value"], micros_of(row["event_time"]))
        for row in reader
    ]


def micros_of(text: str) -> int:
    moment = datetime.fromisoformat(text)
    assert moment.tzinfo is not None
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def written(text: str) -> int | Fraction:
    return int(text) if "." not in text else Fraction(text)


def report(events: list[Event], precision: int = 1) -> dict[str, Any]:
    patients: dict[str, dict[str, Any]] = {}
    for key in sorted({(p, t) for p, t, _, _ in events}):
        group = [(v, m) for p, t, v, m in events if (p, t) == key]
        patients.setdefault(key[0], {})[key[1]] = _stats(key[1], group, precision)
    totals = {
        name: _stats(name, [(v, m) for _, t, v, m in events if t == name], precision)
        for name in sorted({t for _, t, _, _ in events})
    }
    return {"patients": patients, "totals": totals}


def _stats(event_type: str, group: list[tuple[str, int]], precision: int) -> dict[str, Any]:
    values = [written(v) for v, _ in group]
    times = sorted(m for _, m in group)
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    bounds = RANGES.get(event_type)
    # No normal range: nobody measured anomalies, so the report says so (None), not 0.
    anomalies = (
        None if bounds is None else sum(1 for v in values if not bounds[0] <= v <= bounds[1])
    )
    latency = None
    if len(gaps) > 0:
        latency = _round(Fraction(sum(gaps), len(gaps) * 1_000_000), precision)
    return {
        "count": len(values),
        "mean": _round(Fraction(sum(values)) / len(values), precision),
        "min": _as_written(values, min(values)),
        "max": _as_written(values, max(values)),
        "anomalies": anomalies,
        "latency": latency,
    }


def _as_written(values: list[int | Fraction], extreme: int | Fraction) -> int | float:
    forms = [v for v in values if v == extreme]
    return int(extreme) if any(type(v) is int for v in forms) else float(extreme)


def _round(value: Fraction, precision: int) -> int | float:
    exact = round(value, precision)
    return int(exact) if precision <= 0 else float(exact)
