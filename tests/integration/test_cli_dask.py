"""The same work on a Dask cluster (a LocalCluster of two worker processes) gives the same answers."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from distributed import Client, LocalCluster

from export_tally.exitcodes import ExitCode
from tests.cli_run import Outcome, run_cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    with LocalCluster(
        n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None
    ) as cluster:  # type: ignore[no-untyped-call]
        yield cluster.scheduler_address


@pytest.mark.slow
def test_demo_on_dask_matches_local(server_url: str, scheduler: str) -> None:
    outcome = run_cli("demo", "--server", server_url, "--scheduler", scheduler)
    assert outcome.status == ExitCode.OK, outcome.stderr
    assert outcome.stdout == (ROOT / "demo.json").read_text()


@pytest.mark.slow
def test_split_downloads_on_dask_match_local(server_url: str, scheduler: str) -> None:
    run_cli("demo", "--server", server_url)  # cached bodies declare a Content-Length
    outcome = run_cli(
        "demo", "--server", server_url, "--scheduler", scheduler, "--min-part-bytes", "100000"
    )
    assert outcome.status == ExitCode.OK, outcome.stderr
    assert outcome.stdout == (ROOT / "demo.json").read_text()
    assert "byte-range parts" in outcome.stderr


@pytest.mark.slow
def test_checkpoints_work_on_dask(server_url: str, scheduler: str, tmp_path: Path) -> None:
    first = run_cli(
        "demo", "--server", server_url, "--scheduler", scheduler, "--checkpoint-dir", str(tmp_path)
    )
    second = run_cli(
        "demo", "--server", server_url, "--scheduler", scheduler, "--checkpoint-dir", str(tmp_path)
    )
    assert first.stdout == second.stdout == (ROOT / "demo.json").read_text()
    assert "2 of 2 download(s) taken from checkpoints" in second.stderr


@pytest.mark.slow
def test_a_worker_killed_mid_task_is_survived(server_url: str, scheduler: str) -> None:
    outcome: list[Outcome] = []
    run = threading.Thread(
        target=lambda: outcome.append(
            run_cli("small", "--server", server_url, "--scheduler", scheduler)
        )
    )
    with Client(scheduler) as client:  # type: ignore[no-untyped-call]
        workers = [psutil.Process(pid) for pid in client.run(os.getpid).values()]
    run.start()
    time.sleep(2.0)
    assert workers, "no Dask worker processes found"
    workers[0].kill()
    run.join(600)
    assert outcome and outcome[0].status == ExitCode.OK, outcome[0].stderr if outcome else "hung"
    assert outcome[0].stdout == (ROOT / "small.json").read_text()


@pytest.mark.slow
def test_scheduler_without_a_reachable_server_exits_3(
    scheduler: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EXPORT_SERVER_URL", raising=False)
    outcome = run_cli("demo", "--scheduler", scheduler, "--server", "http://127.0.0.1:9")
    assert outcome.status == ExitCode.UNREACHABLE


@pytest.mark.slow
def test_unreachable_scheduler_exits_3(server_url: str) -> None:
    outcome = run_cli("demo", "--server", server_url, "--scheduler", "tcp://127.0.0.1:9")
    assert outcome.status == ExitCode.UNREACHABLE
    assert "Dask scheduler" in outcome.stderr


def test_scheduler_without_dask_installed_says_how_to_install(
    server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # what a missing package looks like
    outcome = run_cli("demo", "--server", server_url, "--scheduler", "tcp://127.0.0.1:8786")
    assert outcome.status == ExitCode.USAGE
    assert "uv sync --extra dask" in outcome.stderr
