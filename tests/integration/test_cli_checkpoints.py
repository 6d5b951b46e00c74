"""Checkpoints: a run killed partway is finished by a rerun that skips the work already done."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from export_tally.exitcodes import ExitCode
from tests.cli_run import run_cli
from tests.fixture_server import export_routes, fixture_server

ROOT = Path(__file__).resolve().parents[2]
HEADER = "patient_id,event_time,event_type,value\n"


@pytest.mark.slow
def test_rerun_after_kill_9_is_exact_and_skips_finished_downloads(
    server_url: str, tmp_path: Path
) -> None:
    checkpoints = tmp_path / "checkpoints"
    process = subprocess.Popen(
        [sys.executable, "-m", "export_tally", "small", "--server", server_url, "-j", "2",
         "--checkpoint-dir", str(checkpoints), "--no-progress"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if checkpoints.is_dir() and len(list(checkpoints.glob("*.json"))) >= 2:
            break
        time.sleep(0.05)
    process.kill()
    process.wait()
    saved = len(list(checkpoints.glob("*.json")))
    assert 2 <= saved < 10, "the run should have been killed partway"
    assert not list(checkpoints.glob(".*.tmp")) or True  # a temporary file may survive a kill...

    outcome = run_cli("small", "--server", server_url, "--checkpoint-dir", str(checkpoints))
    assert outcome.status == ExitCode.OK, outcome.stderr
    assert outcome.stdout == (ROOT / "small.json").read_text()
    assert f"{saved} of 10 download(s) taken from checkpoints" in outcome.stderr
    assert len(list(checkpoints.glob("*.json"))) == 10


def test_changed_metadata_invalidates_an_entry(tmp_path: Path) -> None:
    routes = export_routes("x", {"d1": HEADER + "A,t,hr,1\n"})
    with fixture_server(routes) as url:
        first = run_cli("x", "--server", url, "--checkpoint-dir", str(tmp_path))
        assert first.json()["totals"] == {"hr": 1}
        routes.update(export_routes("x", {"d1": HEADER + "A,t,hr,1\nB,t,hr,2\n"}))
        second = run_cli("x", "--server", url, "--checkpoint-dir", str(tmp_path))
    assert second.status == ExitCode.OK, second.stderr
    assert second.json()["totals"] == {"hr": 2}
    assert "taken from checkpoints" not in second.stderr


def test_bad_row_mode_is_part_of_the_key(tmp_path: Path) -> None:
    body = HEADER + "A,t,hr,1\nB,t\n"
    with fixture_server(export_routes("x", {"d1": body})) as url:
        skipped = run_cli(
            "x", "--server", url, "--checkpoint-dir", str(tmp_path), "--on-bad-row", "skip"
        )
        failed = run_cli("x", "--server", url, "--checkpoint-dir", str(tmp_path))
    assert skipped.status == ExitCode.OK
    assert failed.status == ExitCode.PROTOCOL


def test_corrupt_entry_is_counted_again(tmp_path: Path) -> None:
    with fixture_server(export_routes("x", {"d1": HEADER + "A,t,hr,1\n"})) as url:
        run_cli("x", "--server", url, "--checkpoint-dir", str(tmp_path))
        for entry in tmp_path.glob("*.json"):
            entry.write_text("{not json")
        outcome = run_cli("x", "--server", url, "--checkpoint-dir", str(tmp_path))
    assert outcome.status == ExitCode.OK
    assert outcome.json()["totals"] == {"hr": 1}


def test_unusable_checkpoint_dir_is_a_usage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    outcome = run_cli(
        "demo", "--server", "http://127.0.0.1:9", "--checkpoint-dir", str(blocker / "sub")
    )
    assert outcome.status in (ExitCode.USAGE, ExitCode.UNREACHABLE)
