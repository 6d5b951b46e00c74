"""The tool end to end against the real server on a free port, run in-process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from export_tally.cli.exitcodes import ExitCode
from tests.support.cli_run import run_cli
from tests.support.fixture_server import export_routes, fixture_server
from tests.support.servers import RunningServer, StartServer

ROOT = Path(__file__).resolve().parents[2]

DEMO_EXPECTED = {
    "patients": {
        "P001": {"bp_dia": 3106, "bp_sys": 3084},
        "P002": {"bp_dia": 1665, "bp_sys": 1704},
        "P003": {"bp_dia": 3061, "bp_sys": 3135},
        "P004": {"bp_dia": 1540, "bp_sys": 1489},
    },
    "totals": {"bp_dia": 9372, "bp_sys": 9412},
}


def test_demo_gives_the_spec_answer(server_url: str) -> None:
    outcome = run_cli("demo", "--server", server_url)
    assert outcome.status == ExitCode.OK, outcome.stderr
    assert outcome.json() == DEMO_EXPECTED


def test_output_is_sorted_indented_json_with_final_newline(server_url: str) -> None:
    outcome = run_cli("demo", "--server", server_url, "-j", "1")
    assert outcome.stdout == json.dumps(DEMO_EXPECTED, indent=2, sort_keys=True) + "\n"
    assert outcome.stderr == ""


def test_committed_demo_json_matches_a_live_run(server_url: str) -> None:
    outcome = run_cli("demo", "--server", server_url)
    assert outcome.stdout == (ROOT / "demo.json").read_text()


@pytest.mark.slow
def test_small_end_to_end_matches_committed_json(warm_small_server: RunningServer) -> None:
    outcome = run_cli("small", "--server", warm_small_server.url)
    assert outcome.status == ExitCode.OK, outcome.stderr
    assert outcome.stdout == (ROOT / "small.json").read_text()


def test_list_prints_export_ids(server_url: str) -> None:
    outcome = run_cli("--list", "--server", server_url)
    assert outcome.status == ExitCode.OK
    assert outcome.stdout == "demo\nsmall\nlarge\n"


def test_env_var_names_the_server(server_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPORT_SERVER_URL", server_url)
    assert run_cli("--list").stdout.split() == ["demo", "small", "large"]


def test_output_file_is_written(server_url: str, tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    outcome = run_cli("demo", "--server", server_url, "-o", str(target))
    assert outcome.status == ExitCode.OK
    assert outcome.stdout == ""
    assert json.loads(target.read_text()) == DEMO_EXPECTED
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_failed_run_leaves_no_output_file(tmp_path: Path) -> None:
    # The body has one row fewer than the metadata declares: the run fails after counting it.
    body = "patient_id,event_time,event_type,value\nA,t,hr,1\n"
    target = tmp_path / "out.json"
    with fixture_server(export_routes("x", {"d1": body}, rows={"d1": 2})) as url:
        outcome = run_cli("x", "--server", url, "-o", str(target))
    assert outcome.status == ExitCode.PROTOCOL
    assert list(tmp_path.iterdir()) == []


def test_no_range_server_gives_the_same_answer(server_with: StartServer) -> None:
    running = server_with("--no-range")
    outcome = run_cli("demo", "--server", running.url)
    assert outcome.json() == DEMO_EXPECTED


def test_installed_script_runs(server_url: str) -> None:
    cli = Path(sys.executable).with_name("cli")
    result = subprocess.run(
        [str(cli), "demo", "--server", server_url], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == DEMO_EXPECTED


def test_version() -> None:
    outcome = run_cli("--version")
    assert outcome.status == ExitCode.OK
    assert outcome.stdout.startswith("cli (export-tally) ")


def test_progress_goes_to_stderr_only(server_url: str) -> None:
    outcome = run_cli("demo", "--server", server_url, "--progress")
    assert outcome.json() == DEMO_EXPECTED
    assert "rows" in outcome.stderr and "demo" in outcome.stderr
