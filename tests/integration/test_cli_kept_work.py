"""Finished work is kept by default: a run stopped by Ctrl-C or by the server going down is
resumed by running the same command again, which fetches only what was not saved.

The tool runs as a process against the real server; the user cache directory is the test's own
(XDG_CACHE_HOME, see conftest), so checkpoints land in the default place.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from export_tally.cli.exitcodes import ExitCode
from tests.support.counting_relay import counting_relay
from tests.support.processes import wait_while_running
from tests.support.servers import RunningServer

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "export_tally"]

pytestmark = pytest.mark.slow


def entries(root: Path) -> list[Path]:
    return sorted(root.rglob("*.json"))


def wait_for_entries(process: subprocess.Popen[str], root: Path, count: int) -> None:
    """Wait until `count` downloads are saved while the run goes on (observed on disk)."""
    wait_while_running(process, lambda: len(entries(root)) >= count)


def saved_line(root: Path, saved: list[Path]) -> str:
    directory = saved[0].parent
    assert directory.parent.parent == root  # <root>/<server>/<export>/<entry>
    return (
        f"cli: {len(saved)} of 10 download(s) saved in {directory}: "
        "rerun the same command to resume them"
    )


def test_ctrl_c_keeps_finished_downloads_and_the_rerun_leaves_none(
    warm_server: RunningServer, user_cache_dir: Path
) -> None:
    root = user_cache_dir / "export-tally" / "checkpoints"
    command = [*CLI, "small", "--server", warm_server.url, "-j", "2", "--no-progress"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_entries(process, root, 2)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == ExitCode.INTERRUPTED, stderr
    assert stdout == ""
    saved = entries(root)
    assert 2 <= len(saved) < 10
    assert stderr.strip().splitlines()[-2:] == ["cli: interrupted", saved_line(root, saved)]

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == ExitCode.OK, rerun.stderr
    assert rerun.stdout == (ROOT / "small.json").read_text()
    assert f"{len(saved)} of 10 download(s) taken from checkpoints in {saved[0].parent}" in (
        rerun.stderr
    )
    assert list(root.rglob("*")) == []  # a success leaves nothing behind in the default place


def test_a_run_the_server_dies_under_is_finished_by_a_rerun_that_fetches_only_the_rest(
    warm_server: RunningServer,
    start_server: Callable[..., RunningServer],
    user_cache_dir: Path,
) -> None:
    root = user_cache_dir / "export-tally" / "checkpoints"
    first = start_server()  # shares the warm cache
    port = urlsplit(first.url).port
    assert port is not None
    with counting_relay(port) as relay:
        # Down longer than --max-outage: the run ends, and says what a rerun resumes.
        command = [*CLI, "small", "--server", relay.url, "-j", "2", "--retries", "1",
                   "--max-outage", "2", "--no-progress"]  # fmt: skip
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        wait_for_entries(process, root, 2)
        first.process.terminate()  # the server goes down mid-run
        first.process.wait(30)
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == ExitCode.UNREACHABLE, stderr
        assert stdout == ""
        saved = entries(root)
        assert 2 <= len(saved) < 10
        lines = stderr.strip().splitlines()
        assert lines[-2].startswith("cli: error: ")
        assert lines[-2].endswith("(--max-outage 2)"), lines[-2]
        assert lines[-1] == saved_line(root, saved)
        saved_ids = {json.loads(p.read_text())["download_id"] for p in saved}

        start_server("--port", str(port))  # the same server, back at the same address
        before = len(relay.requests)
        rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
        seen = relay.seen_since(before)
    assert rerun.returncode == ExitCode.OK, rerun.stderr
    assert rerun.stdout == (ROOT / "small.json").read_text()
    listed = {r.rsplit("/", 1)[1] for r in seen if r.count("/") == 4}  # GET /api/export/small/ID
    assert len(listed) == 10
    fetched = sorted(r for r in seen if r.endswith("/data"))
    assert fetched == sorted(f"GET /api/export/small/{d}/data" for d in listed - saved_ids)
    assert list(root.rglob("*")) == []
