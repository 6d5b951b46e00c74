"""Checks made before any download starts, so that `--report` fails fast or not at all."""

from __future__ import annotations

import os
from pathlib import Path

from export_tally.errors import UsageError
from export_tally.render.files import check_writable

INSTALL_HINT = "uv sync --extra report (or: pip install 'export-tally[report]')"


def ensure_available() -> None:
    """Import the report's optional libraries now; UsageError (exit 2) when they are missing."""
    try:
        import altair  # noqa: F401
        import vl_convert  # noqa: F401
    except ImportError as exc:
        raise UsageError(
            f"--report needs the optional report libraries ({exc.name or 'altair'} is missing): "
            f"install them with {INSTALL_HINT}"
        ) from None


def check_report_target(report: Path, output: Path | None) -> None:
    """The report file can be written, and is not the output file (UsageError otherwise)."""
    check_writable(report)
    if output is not None and _same_file(report, output):
        raise UsageError(f"--report and -o both name {report}: give the report its own file")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist yet: compare where they would be
        return a.resolve() == b.resolve()
