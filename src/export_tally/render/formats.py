"""The result as the user asked to see it: JSON (the contract, the default), a table, or CSV.

Every format is made from the same report dict (`Aggregator.report`), so they cannot disagree:
{"patients": {pid: {event_type: V}}, "totals": {event_type: V}}, where V is a count, or with
`--stats` a dict of count, mean, min, max, anomalies and latency (a null latency is None).
"""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any, Literal

from export_tally.render.json_text import render_json

if TYPE_CHECKING:
    from export_tally.render.number_format import Terminal

Format = Literal["json", "table", "csv"]
FORMATS: tuple[Format, ...] = ("json", "table", "csv")

COUNT_COLUMNS = ("patient_id", "event_type", "count")
STATS_COLUMNS = (*COUNT_COLUMNS, "mean", "min", "max", "anomalies", "latency")


def render_result(
    report: dict[str, Any],
    kind: Format,
    *,
    stats: bool = False,
    precision: int = 1,
    terminal: Terminal | None = None,
) -> str:
    """The report as text in the format `kind`; `json` is exactly `render_json` (the contract)."""
    if kind == "csv":
        return render_csv(report, stats=stats)
    if kind == "table":
        from export_tally.render.table import (
            render_table,  # prettytable is imported only for this format
        )

        return render_table(report, stats=stats, precision=precision, terminal=terminal)
    return render_json(report)


def render_csv(report: dict[str, Any], *, stats: bool = False) -> str:
    """One row per (patient, event type) that occurs, sorted; no totals; a null is an empty cell.

    Numbers are written as the JSON writes them (3106, 79.2), so a reader gets the same values.
    Cells are data, never altered: a spreadsheet user should know that a cell starting with `=`
    is what the server sent (see docs/output-formats.md).
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(STATS_COLUMNS if stats else COUNT_COLUMNS)
    for patient_id, types in sorted(report["patients"].items()):
        for event_type, value in sorted(types.items()):
            if stats:
                writer.writerow([patient_id, event_type, *(value[c] for c in STATS_COLUMNS[2:])])
            else:
                writer.writerow([patient_id, event_type, value])
    return out.getvalue()
