"""`--format table`: the report as aligned terminal tables, drawn by rich.

Counts: patients as rows, event types as columns (and each patient's total), a totals row.
With `--stats`: one table per event type, the statistics as columns. Numbers are right-aligned
with thousands separators. Nothing is ever cut: each column is at least as wide as its longest
number or id (headers may wrap at spaces), and when the columns do not fit the width they are
dealt out over several tables, each repeating the patient column. Every text from the data goes
in as rich `Text`, so a patient id like `[/x]` is printed as itself, never read as markup.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Column, Table
from rich.text import Text

from export_tally.formats import Terminal, count_of, event_types_of, format_number

STAT_HEADERS = ("count", "mean", "min", "max", "anomalies", "average gap between readings (s)")
NO_EVENTS = "no events: the export has no rows"
_MEASURE_WIDTH = 100_000


@dataclass(frozen=True)
class Grid:
    """A table before layout: a title, the id column, value columns, body rows and a totals row.

    `rows` and `totals` hold the id cell first, then one cell per value column.
    """

    title: str
    id_header: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    totals: tuple[str, ...] | None


def count_grid(report: dict[str, Any]) -> Grid:
    """Patients by event type, each patient's total, and the totals per event type."""
    types = event_types_of(report)
    rows = []
    for patient_id, values in sorted(report["patients"].items()):
        counts = [count_of(values.get(t, 0)) for t in types]
        rows.append((patient_id, *map(format_number, counts), format_number(sum(counts))))
    totals = [count_of(report["totals"][t]) for t in types]
    total_row = ("totals", *map(format_number, totals), format_number(sum(totals)))
    return Grid(
        "events per patient and event type",
        "patient_id",
        (*types, "total"),
        tuple(rows),
        total_row if types else None,
    )


def stats_grid(report: dict[str, Any], event_type: str, precision: int) -> Grid:
    """One event type's statistics per patient that has it, then over all patients."""

    def cells(s: dict[str, Any]) -> tuple[str, ...]:
        return (
            format_number(s["count"]),
            format_number(s["mean"], precision),
            format_number(s["min"]),
            format_number(s["max"]),
            format_number(s["anomalies"]),
            format_number(s["latency"], precision),
        )

    rows = tuple(
        (patient_id, *cells(values[event_type]))
        for patient_id, values in sorted(report["patients"].items())
        if event_type in values
    )
    totals = ("totals", *cells(report["totals"][event_type]))
    return Grid(event_type, "patient_id", STAT_HEADERS, rows, totals)


def _rich_table(grid: Grid, columns: Sequence[int], styled: bool) -> Table:
    """The grid's id column and the value columns at `columns` (indexes into `grid.headers`)."""

    def widest(index: int) -> int:
        cells = [row[index] for row in grid.rows]
        if grid.totals is not None:
            cells.append(grid.totals[index])
        return max((len(c) for c in cells), default=0)

    header_style = "bold" if styled else ""
    spec = [Column(Text(grid.id_header), min_width=widest(0), header_style=header_style)]
    spec += [
        Column(Text(grid.headers[i]), justify="right", min_width=widest(i + 1),
               header_style=header_style, overflow="fold")
        for i in columns
    ]  # fmt: skip
    table = Table(*spec, box=box.SIMPLE_HEAD, pad_edge=False)
    for row in grid.rows:
        table.add_row(*(Text(row[i]) for i in (0, *(c + 1 for c in columns))))
    if grid.totals is not None:
        table.add_section()
        table.add_row(
            *(Text(grid.totals[i]) for i in (0, *(c + 1 for c in columns))),
            style="bold" if styled else "",
        )
    return table


def layout(grid: Grid, width: int, styled: bool = False) -> list[Table]:
    """The grid as one table, or as several when its columns do not fit `width` side by side."""
    measurer = Console(width=_MEASURE_WIDTH, file=io.StringIO(), color_system=None)

    def minimum(columns: list[int]) -> int:
        return measurer.measure(_rich_table(grid, columns, styled)).minimum

    groups: list[list[int]] = []
    current: list[int] = []
    for index in range(len(grid.headers)):
        if current and minimum([*current, index]) > width:
            groups.append(current)
            current = []
        current.append(index)
    groups.append(current)
    return [_rich_table(grid, group, styled) for group in groups]


def render_table(
    report: dict[str, Any],
    *,
    stats: bool = False,
    precision: int = 1,
    terminal: Terminal | None = None,
) -> str:
    """The report as text: one or more tables, or an empty table and a note when nothing occurred."""
    terminal = terminal or Terminal()
    types = event_types_of(report)
    grids = [stats_grid(report, t, precision) for t in types] if stats else [count_grid(report)]
    if not types:
        grids = [Grid("events per patient and event type", "patient_id", (), (), None)]
    out = io.StringIO()
    for grid in grids:
        tables = layout(grid, terminal.width, terminal.styled)
        for number, table in enumerate(tables, 1):
            part = f" ({number} of {len(tables)})" if len(tables) > 1 else ""
            _print(out, terminal, Text(grid.title + part, style="bold" if terminal.styled else ""))
            _print(out, terminal, table)
    if not types:
        out.write(NO_EVENTS + "\n")
    lines = out.getvalue().rstrip("\n").split("\n")
    if not terminal.styled:  # rich pads every line to the table's width
        lines = [line.rstrip() for line in lines]
    return "\n".join(lines) + "\n"


def _print(out: io.StringIO, terminal: Terminal, renderable: Table | Text) -> None:
    needed = Console(width=_MEASURE_WIDTH, file=io.StringIO()).measure(renderable).minimum
    console = Console(
        file=out,
        width=max(terminal.width, needed),  # never narrower than the table's minimum
        force_terminal=terminal.styled,
        color_system="standard" if terminal.styled else None,
        no_color=not terminal.styled,
        highlight=False,
        markup=False,
        emoji=False,
        legacy_windows=False,
    )
    console.print(renderable)
