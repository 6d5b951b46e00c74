"""`--report FILE.html`: a self-contained HTML report of a run, with static SVG charts.

Importing this package imports no chart library: `ensure_available` does, before the run, and
`build_report` builds the page once the run has succeeded.
"""

from __future__ import annotations

from typing import Any

from export_tally.report.facts import DownloadFacts, RunFacts, collect_facts
from export_tally.report.preflight import INSTALL_HINT, check_report_target, ensure_available

__all__ = [
    "INSTALL_HINT",
    "DownloadFacts",
    "RunFacts",
    "build_report",
    "check_report_target",
    "collect_facts",
    "ensure_available",
]


def build_report(facts: RunFacts, report: dict[str, Any]) -> str:
    """The report page for a finished run; `report` is the dict the JSON output is made from."""
    from export_tally.report.page import build_page  # altair and vl-convert load here

    return build_page(facts, report)
