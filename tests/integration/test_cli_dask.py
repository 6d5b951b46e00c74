"""The same work on a Dask cluster (a LocalCluster of two worker processes) gives the same answers,
from the export API and from FHIR Bulk Data (open, or behind SMART Backend Services)."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from distributed import Client, LocalCluster, get_task_stream

from export_tally.cli.exitcodes import ExitCode
from tests.support.cli_run import Outcome, run_cli
from tests.support.fixture_server import export_routes, fixture_server
from tests.support.processes import default_port_is_free, wait_for
from tests.support.servers import Reaper, RunningServer
from tests.support.smart_keys import TestClientKey
from tests.support.smart_server import SmartServer, running_smart_server

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


@pytest.fixture(scope="module")
def smart_server(
    tmp_path_factory: pytest.TempPathFactory, reaper: Reaper, warm_server: RunningServer,
    server_cache_dir: Path,
) -> Iterator[SmartServer]:  # fmt: skip
    """A server whose FHIR routes need a SMART token, on the session's cache (warm for demo)."""
    directory = tmp_path_factory.mktemp("dask-smart")
    args = ["--workers", "1"]
    with running_smart_server(directory, reaper, args, cache_dir=server_cache_dir) as server:
        yield server


def credentials(client: TestClientKey, directory: Path) -> list[str]:
    """--client-id and --private-key for `client`, its key written as PEM in `directory`."""
    key = directory / "key.pem"
    key.write_bytes(client.pem())
    return ["--client-id", client.client_id, "--private-key", str(key)]


@pytest.mark.slow
@pytest.mark.parametrize("smart", [False, True], ids=["open", "SMART"])
def test_a_fhir_export_on_dask_is_demo_json(
    server_url: str, scheduler: str, request: pytest.FixtureRequest, tmp_path: Path, smart: bool
) -> None:
    """`--fhir` with `--scheduler`: demo's two files counted by the Dask workers (the scheduler's
    task stream shows them), which, behind SMART, each get their own token."""
    argv = ["--fhir", f"{server_url}/fhir"]
    if smart:
        server: SmartServer = request.getfixturevalue("smart_server")
        argv = ["--fhir", server.fhir, *credentials(server.rsa, tmp_path)]
    with Client(scheduler) as client, get_task_stream(client) as stream:  # type: ignore[no-untyped-call]
        outcome = run_cli(*argv, "demo", "--key", "text", "--scheduler", scheduler)
    assert outcome.status == ExitCode.OK, outcome.stderr
    assert outcome.stdout == (ROOT / "demo.json").read_text()
    ran = [task for task in stream.data if task["key"].startswith("_run_on_dask")]
    assert len(ran) == 2, stream.data


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


def executing(client: Client) -> dict[str, int]:
    """How many tasks each Dask worker (by address) is running right now."""
    counts: dict[str, int] = client.run(lambda dask_worker: len(dask_worker.state.executing))
    return counts


@pytest.mark.slow
def test_a_worker_killed_mid_task_is_survived(server_url: str, scheduler: str) -> None:
    outcome: list[Outcome] = []
    run = threading.Thread(
        target=lambda: outcome.append(
            run_cli("small", "--server", server_url, "--scheduler", scheduler)
        )
    )
    with Client(scheduler) as client:  # type: ignore[no-untyped-call]
        pids = client.run(os.getpid)
        run.start()
        # Wait until a worker is running one of the run's tasks, then kill that one.
        busy: list[str] = []

        def some_worker_is_busy() -> bool:
            busy[:] = [address for address, tasks in executing(client).items() if tasks]
            return bool(busy) or not run.is_alive()

        assert wait_for(some_worker_is_busy)
        assert busy, "the run ended before a worker could be killed mid-task"
        psutil.Process(pids[busy[0]]).kill()
    run.join(600)
    assert outcome and outcome[0].status == ExitCode.OK, outcome[0].stderr if outcome else "hung"
    assert outcome[0].stdout == (ROOT / "small.json").read_text()


@pytest.mark.slow
@pytest.mark.skipif(not default_port_is_free(), reason="something listens on 127.0.0.1:8000")
def test_scheduler_without_a_server_does_not_start_the_bundled_one(
    scheduler: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EXPORT_SERVER_URL", raising=False)
    monkeypatch.delenv("EXPORT_TALLY_NO_EMBEDDED", raising=False)
    outcome = run_cli("demo", "--scheduler", scheduler)
    assert outcome.status == ExitCode.UNREACHABLE
    assert outcome.stderr == (
        "cli: error: nothing answers at http://127.0.0.1:8000, and --scheduler cannot use the "
        "bundled server (remote workers could not reach it): pass --server with an address they "
        "can reach\n"
    )


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


def test_an_outage_seen_by_dask_workers_is_told(scheduler: str) -> None:
    header = "patient_id,event_time,event_type,value\n"
    bodies = {f"d{i}": header + f"P{i},t,hr,1\n" for i in range(4)}
    routes = export_routes("x", bodies)
    for name in bodies:  # a gateway whose server is down for the first requests of every body
        routes[f"/api/export/x/{name}/data"].unavailable = 2
    with fixture_server(routes) as url:
        outcome = run_cli("x", "--server", url, "--scheduler", scheduler)
    assert outcome.status == ExitCode.OK, outcome.stderr
    assert outcome.json()["totals"] == {"hr": 4}
    assert outcome.stderr.count("server unreachable since") >= 1
    assert outcome.stderr.count("server back at") >= 1
