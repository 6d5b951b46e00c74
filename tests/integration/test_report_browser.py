"""The committed report in a real browser (headless Chromium), through scripts/screenshot_report.py.

Skipped where Chromium is not installed (`sudo apt-get install -y chromium`).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "screenshot_report.py"

pytestmark = pytest.mark.skipif(
    not (shutil.which("chromium") or shutil.which("chromium-browser")),
    reason="Chromium is not installed (sudo apt-get install -y chromium)",
)


def screenshot(page: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(page), "--out", str(out), "--height", "600"],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_committed_report_renders_without_errors(tmp_path: Path) -> None:
    shot = tmp_path / "demo.png"
    done = screenshot(ROOT / "examples" / "demo.html", shot)
    assert done.returncode == 0, done.stderr
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_page_with_errors_fails(tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text(
        "<!DOCTYPE html><html><body><svg width='9' height='9'></svg>"
        "<script>console.error('boom'); throw new Error('oops')</script></body></html>"
    )
    done = screenshot(page, tmp_path / "bad.png")
    assert done.returncode == 1
    assert "console error: boom" in done.stderr
    assert "exception: Error: oops" in done.stderr
