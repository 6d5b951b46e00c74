"""`--stats` end to end: the same numbers as a naive reference that holds and sorts every row."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from export_tally.cli.exitcodes import ExitCode
from export_tally.cli.settings import IN_PROCESS_ROWS_VARIABLE
from tests.support import stats_reference
from tests.support.cli_run import run_cli
from tests.support.fixture_server import export_routes, fixture_server
from tests.support.servers import RunningServer

ROOT = Path(__file__).resolve().parents[2]
HEADER = "patient_id,event_time,event_type,value\n"


@pytest.fixture(scope="module")
def demo_events(server_url: str) -> list[stats_reference.Event]:
    """Every row of `demo` as the naive reference reads it (read once for the module)."""
    events = []
    with httpx.Client(base_url=server_url, timeout=60) as client:
        for download_id in client.get("/api/export/demo").json()["data"]["download_ids"]:
            body = client.get(f"/api/export/demo/{download_id}/data").content
            events.extend(stats_reference.events_of(body))
    return events


@pytest.mark.parametrize("precision", [1, 0, 3])
def test_demo_stats_match_the_naive_reference(
    server_url: str, demo_events: list[stats_reference.Event], precision: int
) -> None:
    outcome = run_cli("demo", "--server", server_url, "--stats", "--precision", str(precision))
    assert outcome.status == ExitCode.OK, outcome.stderr
    assert outcome.json() == stats_reference.report(demo_events, precision)


def test_committed_demo_stats_json_matches_a_live_run(server_url: str) -> None:
    outcome = run_cli("demo", "--server", server_url, "--stats")
    assert outcome.stdout == (ROOT / "examples" / "demo.stats.json").read_text()


@pytest.mark.slow
def test_small_stats_match_committed_json(warm_small_server: RunningServer) -> None:
    outcome = run_cli("small", "--server", warm_small_server.url, "--stats")
    assert outcome.status == ExitCode.OK, outcome.stderr
    assert outcome.stdout == (ROOT / "examples" / "small.stats.json").read_text()


def test_stats_are_exact_under_faults_and_splitting(
    start_server: Callable[..., RunningServer], server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(IN_PROCESS_ROWS_VARIABLE, "0")  # a pool of workers, which splits demo
    expected = (ROOT / "examples" / "demo.stats.json").read_text()
    running = start_server(
        "--fail-rate", "0.2", "--drop-rate", "0.3", "--fault-seed", "31", "--retry-after", "0"
    )
    assert run_cli("demo", "--server", running.url, "--stats").stdout == expected
    run_cli("demo", "--server", server_url)  # cached: splittable
    split = run_cli(
        "demo", "--server", server_url, "--stats", "-j", "3", "--min-part-bytes", "50000"
    )
    assert "byte-range parts" in split.stderr
    assert split.stdout == expected


def test_stats_checkpoints_are_kept_apart_from_counts(server_url: str, tmp_path: Path) -> None:
    counts = run_cli("demo", "--server", server_url, "--checkpoint-dir", str(tmp_path))
    stats = run_cli("demo", "--server", server_url, "--stats", "--checkpoint-dir", str(tmp_path))
    again = run_cli("demo", "--server", server_url, "--stats", "--checkpoint-dir", str(tmp_path))
    assert "taken from checkpoints" not in stats.stderr
    assert "2 of 2 download(s) taken from checkpoints" in again.stderr
    assert again.stdout == stats.stdout != counts.stdout


def test_non_numeric_value_is_a_bad_row_with_stats_only() -> None:
    body = HEADER + "A,2025-08-26T00:00:01Z,hr,72\nA,2025-08-26T00:00:02Z,hr,n/a\n"
    with fixture_server(export_routes("x", {"d1": body})) as url:
        counts = run_cli("x", "--server", url)
        failed = run_cli("x", "--server", url, "--stats")
        skipped = run_cli("x", "--server", url, "--stats", "--on-bad-row", "skip")
    assert counts.status == ExitCode.OK
    assert failed.status == ExitCode.PROTOCOL and "line 3" in failed.stderr
    assert skipped.status == ExitCode.OK
    entry = json.loads(skipped.stdout)["patients"]["A"]["hr"]
    assert entry == {
        "count": 1,
        "mean": 72.0,
        "min": 72,
        "max": 72,
        "anomalies": None,  # "hr" has no normal range: anomalies are not known
        "latency": None,
    }
