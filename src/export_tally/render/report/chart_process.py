"""Rendering the report's charts in a child process (`chart_child`), and what its end means.

The child starts as soon as a page is begun, so that it imports the renderer while the page's
specifications are built; all of a page's charts go to it at once. Whatever happens to it (it
fails, is killed by a signal, or aborts), the tool sees a ReportError with one line, never a
crash of its own.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from typing import Any

from export_tally.errors import ReportError

CHILD = "export_tally.render.report.chart_child"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class ChartProcess:
    """One child process that renders one page's charts; `render` once, or `close` unused."""

    def __init__(self) -> None:
        try:
            self._child: subprocess.Popen[bytes] | None = subprocess.Popen(
                [sys.executable, "-m", CHILD],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except OSError as exc:
            raise ReportError(f"cannot start the chart renderer: {exc}") from None

    def render(self, jobs: list[tuple[dict[str, Any], str]]) -> list[str]:
        """The SVG of each (specification, Vega-Lite version), in order; ReportError otherwise."""
        child = self._child
        if child is None:
            raise RuntimeError("a ChartProcess renders once")
        try:
            out, err = child.communicate(json.dumps(jobs).encode("utf-8", "surrogatepass"))
        finally:  # Ctrl-C or SIGTERM while it draws: it goes too
            self._child = None
            if child.returncode is None:
                child.kill()
                child.wait()
        if child.returncode < 0:
            raise ReportError(
                f"the chart renderer died ({_signal_name(-child.returncode)}) while drawing the "
                "report's charts; the counts were written; the report was not"
            )
        if child.returncode != 0:
            lines = err.decode("utf-8", "replace").strip().splitlines() or ["no message"]
            raise ReportError(
                f"the chart renderer failed (exit {child.returncode}: {lines[-1][:300]}); "
                "the counts were written; the report was not"
            )
        svgs: list[str] = json.loads(out)
        if len(svgs) != len(jobs):
            raise ReportError("the chart renderer returned the wrong number of charts")
        return svgs

    def close(self) -> None:
        """Stop the child if it was never given work (the page failed before its charts)."""
        child, self._child = self._child, None
        if child is not None:
            child.kill()
            child.communicate()
