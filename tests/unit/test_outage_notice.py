"""The user hears of an outage once when it begins and once when it ends, however many workers
report it, and in whatever order their reports arrive."""

from __future__ import annotations

import io
import re

from export_tally.cli.progress import OutageNotice, clock
from export_tally.transport.retry import OutageEvent


def told(*events: OutageEvent) -> list[str]:
    stream = io.StringIO()
    notice = OutageNotice(stream, "cli: ", 120.0)
    for event in events:
        notice(event)
    return stream.getvalue().splitlines()


def test_one_outage_seen_by_several_workers_is_told_once_each_way() -> None:
    lines = told(
        OutageEvent(100.0),  # worker 1 finds the server gone
        OutageEvent(101.5),  # worker 2 too
        OutageEvent(100.0, 130.0),  # worker 1 is answered again
        OutageEvent(101.5, 131.0),  # worker 2 as well
    )
    assert lines == [
        f"cli: server unreachable since {clock(100.0)}; retrying for up to 120 s",
        f"cli: server back at {clock(130.0)}, after 30 s unreachable",
    ]


def test_news_of_an_outage_that_is_over_is_not_told_again() -> None:
    # Worker 2 lost the server before it came back, but its report arrives after worker 1's.
    lines = told(OutageEvent(100.0), OutageEvent(100.0, 130.0), OutageEvent(101.0))
    assert len(lines) == 2


def test_a_second_outage_is_told_afresh() -> None:
    lines = told(
        OutageEvent(100.0), OutageEvent(100.0, 110.0), OutageEvent(200.0), OutageEvent(200.0, 205.0)
    )
    assert [re.sub(r" (since|at) .*", "", line) for line in lines] == [
        "cli: server unreachable", "cli: server back", "cli: server unreachable", "cli: server back",
    ]  # fmt: skip
