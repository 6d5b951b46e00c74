"""The report's own error: the run's result is out, but its report could not be drawn."""

from __future__ import annotations

from export_tally.core.errors import TallyError


class ReportError(TallyError):
    """The report could not be made (its charts failed to render, or their renderer died).

    Raised only after the counts were written; `exitcodes` maps it to its own status.
    """
