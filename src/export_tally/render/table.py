"""`--format table`: the report as aligned terminal tables, drawn by prettytable.

Counts: patients as rows, event types as columns (and each patient's total), a totals row.
With `--stats`: one table per event type, the statistics as columns. Numbers are right-aligned
with thousands separators. Nothing is ever cut: a column is as wide as its widest number or id
(long headers wrap at spaces), and when the columns do not fit the width they are dealt out over
several tables, each repeating the patient column. Text from the data is shown as itself: no
markup is read in it, and control characters (an escape sequence, a newline) are shown escaped
(`\\x1b`) instead of acting on the terminal.

Why not rich: httpx imports rich (with pygments) whenever it is installed, to offer its own
command line, which would slow the start of every run and worker process by a tenth of a second
or more; prettytable is imported here only, when a table is asked for.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any

from prettytable import PrettyTable, TableStyle
from wcwidth import wcswidth

from export_tally.render.number_format import Terminal, count_of, event_types_of, format_number
from export_tally.render.terminal_text import for_terminal

STAT_HEADERS = ("count", "mean", "min", "max", "anomalies", "average gap between readings (s)")
COUNTS_TITLE = "events per patient and event type"
NO_EVENTS = "no events: the export has no rows"
HEADER_WRAP = 12  # a header longer than this and than its numbers wraps at spaces
BOLD, RESET = "\x1b[1m", "\x1b[0m"


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


def shown(text: str) -> str:
    """`text` as the terminal should print it (see `terminal_text`)."""
    return for_terminal(text)


def count_grid(report: dict[str, Any]) -> Grid:
    """Patients by event type, each patient's total, and the totals per event type."""
    types = event_types_of(report)
    rows = []
    for patient_id, values in sorted(report["patients"].items()):
        counts = [count_of(values.get(t, 0)) for t in types]
        rows.append((shown(patient_id), *map(format_number, counts), format_number(sum(counts))))
    totals = [count_of(report["totals"][t]) for t in types]
    total_row = ("totals", *map(format_number, totals), format_number(sum(totals)))
    return Grid(
        COUNTS_TITLE,
        "patient_id",
        (*map(shown, types), "total") if types else (),
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
        (shown(patient_id), *cells(values[event_type]))
        for patient_id, values in sorted(report["patients"].items())
        if event_type in values
    )
    totals = ("totals", *cells(report["totals"][event_type]))
    return Grid(shown(event_type), "patient_id", STAT_HEADERS, rows, totals)


def _width(text: str) -> int:
    """Columns a text takes on a terminal (wide characters count two)."""
    return max(wcswidth(line) for line in text.split("\n"))


@dataclass(frozen=True)
class _Column:
    header: str  # wrapped to fit over the cells
    cells: list[str]  # the body rows', then the totals row's
    width: int  # terminal columns of the widest line of the header or cells


def _columns(grid: Grid) -> list[_Column]:
    """Every column (the id column first), its header wrapped to fit over its cells."""
    columns = []
    for index, header in enumerate((grid.id_header, *grid.headers)):
        cells = [row[index] for row in grid.rows]
        if grid.totals is not None:
            cells.append(grid.totals[index])
        widest = max((_width(c) for c in cells), default=0)
        longest_word = max((_width(w) for w in header.split()), default=0)
        wrapped = textwrap.fill(
            header, max(widest, longest_word, HEADER_WRAP), break_long_words=False
        )
        columns.append(_Column(wrapped, cells, max(widest, _width(wrapped))))
    return columns


def table_width(columns: list[_Column]) -> int:
    """The width of a table of these columns: `| cell |` per column, one space of padding."""
    return 1 + sum(3 + column.width for column in columns)


def layout(columns: list[_Column], width: int) -> list[list[int]]:
    """The value columns of each table (indexes into `columns[1:]`): as few tables as fit `width`.

    The id column (`columns[0]`) comes with every table; a table that cannot fit (one column too
    wide for the terminal) is printed whole all the same.
    """
    groups: list[list[int]] = []
    current: list[int] = []
    for index in range(len(columns) - 1):
        candidate = [columns[0], *(columns[i + 1] for i in [*current, index])]
        if current and table_width(candidate) > width:
            groups.append(current)
            current = []
        current.append(index)
    groups.append(current)
    return groups


def _draw(grid: Grid, columns: list[_Column], group: list[int], styled: bool) -> str:
    chosen = [columns[0], *(columns[i + 1] for i in group)]

    def bold(cell: str) -> str:
        return "\n".join(f"{BOLD}{line}{RESET}" for line in cell.split("\n")) if styled else cell

    table = PrettyTable()
    table.set_style(TableStyle.SINGLE_BORDER)
    table.header = False  # the header goes in as a row: column names need not be unique
    table.add_row([bold(c.header) for c in chosen], divider=True)
    bodies = len(grid.rows)
    for r in range(bodies):
        table.add_row([c.cells[r] for c in chosen], divider=r == bodies - 1)
    if grid.totals is not None:
        table.add_row([bold(c.cells[bodies]) for c in chosen])
    table.align = "r"
    table.align["Field 1"] = "l"
    return table.get_string()


def render_table(
    report: dict[str, Any],
    *,
    stats: bool = False,
    precision: int = 1,
    terminal: Terminal | None = None,
) -> str:
    """The report as text: titled tables, or an empty table and a one-line note when no events."""
    terminal = terminal or Terminal()
    types = event_types_of(report)
    if not types:
        grids = [Grid(COUNTS_TITLE, "patient_id", (), (), None)]
    elif stats:
        grids = [stats_grid(report, t, precision) for t in types]
    else:
        grids = [count_grid(report)]
    blocks = []
    for grid in grids:
        columns = _columns(grid)  # once: their widths decide the layout, then each part is drawn
        groups = layout(columns, terminal.width)
        for number, group in enumerate(groups, 1):
            title = grid.title + (f" ({number} of {len(groups)})" if len(groups) > 1 else "")
            title = f"{BOLD}{title}{RESET}" if terminal.styled else title
            blocks.append(f"{title}\n{_draw(grid, columns, group, terminal.styled)}")
    if not types:
        blocks[-1] += "\n" + NO_EVENTS
    return "\n\n".join(blocks) + "\n"
