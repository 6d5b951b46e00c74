"""Reading the result dict that every format is made from, and showing its numbers to people.

The dict is {"patients": {pid: {event_type: V}}, "totals": {event_type: V}}, where V is a count,
or with `--stats` a dict of count, mean, min, max, anomalies and latency.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Terminal:
    """Where a table is shown: its width in columns, and whether it may use colour and bold."""

    width: int = 80
    styled: bool = False


def count_of(value: Any) -> int:
    """The number of events in a report value: a count, or a stats dict's `count`."""
    return int(value["count"]) if isinstance(value, dict) else int(value)


def event_types_of(report: dict[str, Any]) -> list[str]:
    """The event types that occur, sorted."""
    return sorted(report["totals"])


def format_number(value: float | int | None, places: int | None = None) -> str:
    """A number for people: thousands separators, `places` decimals when given; None as n/a."""
    if value is None:
        return "n/a"
    if places is not None and isinstance(value, float):
        return f"{value:,.{places}f}"
    return f"{value:,}"
