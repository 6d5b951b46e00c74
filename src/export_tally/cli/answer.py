"""The answer, as the user asked to see it, written before anything else can go wrong: to stdout
or atomically to -o FILE; JSON and CSV as counted (the contract), a table with each NDJSON code's
display text beside it."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from export_tally.cli.settings import Settings
    from export_tally.core.aggregation import Aggregator
    from export_tally.render.number_format import Terminal
    from export_tally.scheduling.run import ExportResult


def terminal_for(settings: Settings, stdout: TextIO) -> Terminal:
    """The width a table may take, and whether it may be styled (a terminal, no NO_COLOR)."""
    from export_tally.render.number_format import Terminal

    if settings.output is not None or not stdout.isatty():
        return Terminal(settings.columns or 80)
    return Terminal(shutil.get_terminal_size().columns, styled=not settings.no_color)


def write_counts(
    settings: Settings, aggregation: Aggregator[Any], result: ExportResult, stdout: TextIO
) -> dict[str, Any]:
    """The answer, to stdout or -o, before anything else can go wrong; the report dict as
    people see it (labelled)."""
    from export_tally.render.files import write_atomically
    from export_tally.render.formats import render_result

    counted = aggregation.report(result.tally, settings.precision)
    data = for_people(counted, result)
    terminal = terminal_for(settings, stdout)
    # JSON and CSV name each event type as counted (the contract); a table, with its label.
    shown = data if settings.format == "table" else counted
    text = render_result(shown, settings.format, stats=settings.stats, precision=settings.precision, terminal=terminal)  # fmt: skip
    # The counts go out first: a report that cannot be drawn must not take the result with it.
    if settings.output is not None:
        write_atomically(settings.output, text)
    else:
        stdout.write(text)
        stdout.flush()
    return data


def for_people(data: dict[str, Any], result: ExportResult) -> dict[str, Any]:
    """The report dict with event types named by their labels (an NDJSON code's display), as a
    table and the report show them."""
    from export_tally.core.counts.tally import Tally
    from export_tally.render.labels import with_labels

    return with_labels(data, result.tally.labels) if isinstance(result.tally, Tally) else data
