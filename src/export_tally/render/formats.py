"""The result as the user asked to see it: JSON (the contract, the default), a table, or CSV.

Every format is made from the same report dict (`Aggregator.report`), so they cannot disagree:
{"patients": {pid: {event_type: V}}, "totals": {event_type: V}}, where V is a count, or with
`--stats` a dict of count, mean, min, max, anomalies and latency (a null latency is None).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from export_tally.render.json_text import render_json

if TYPE_CHECKING:
    from collections.abc import Sequence

    from export_tally.render.number_format import Terminal

Format = Literal["json", "table", "csv"]
FORMATS: tuple[Format, ...] = ("json", "table", "csv")

COUNT_COLUMNS = ("patient_id", "event_type", "count")
# A spreadsheet reads a cell that starts with one of these as a formula (tab and carriage return:
# some read past them); a quote is here so that the protection can always be undone.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")
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

    RFC 4180 quoting (a field with a comma, quote, CR or LF is quoted), lines end with `\\n`.

    Numbers are written as the JSON writes them (3106, 79.2), so a reader gets the same values.
    A patient id or event type that a spreadsheet would run as a formula is protected by a
    leading `'` (`spreadsheet_text`); every other character is the server's, exactly.
    """
    lines = [_csv_line(STATS_COLUMNS if stats else COUNT_COLUMNS)]
    for patient_id, types in sorted(report["patients"].items()):
        ids = (spreadsheet_text(patient_id),)
        for event_type, value in sorted(types.items()):
            numbers = [value[c] for c in STATS_COLUMNS[2:]] if stats else [value]
            lines.append(_csv_line((*ids, spreadsheet_text(event_type), *numbers)))
    return "".join(lines)


def _csv_line(cells: Sequence[str | int | float | None]) -> str:
    """One CSV record, as csv.writer writes it with `\\n` line ends, but also quoting a field
    with a carriage return (Python 3.11's writer quotes only the line terminator's characters,
    and a bare CR in an unquoted field breaks every reader)."""
    fields = []
    for cell in cells:
        text = "" if cell is None else str(cell)
        if any(c in text for c in ',"\r\n'):
            text = '"' + text.replace('"', '""') + '"'
        fields.append(text)
    return ",".join(fields) + "\n"


def spreadsheet_text(text: str) -> str:
    """`text` with a `'` in front when it starts with `=`, `+`, `-`, `@`, tab, CR or `'`.

    A spreadsheet shows such a cell as text instead of running it as a formula (and hides the
    quote). Undone exactly by `exact_text`: the quote is added to every text starting with a
    quote too, so one leading quote is always the protection's.
    """
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def exact_text(cell: str) -> str:
    """The server's text of a CSV text cell: `spreadsheet_text` undone."""
    return cell[1:] if cell.startswith("'") else cell
