"""Checkpoints: a run killed partway is finished by a rerun that skips the work already done;
an entry that cannot be trusted is ignored with a warning."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from export_tally.cli.exitcodes import ExitCode
from export_tally.cli.settings import IN_PROCESS_ROWS_VARIABLE
from tests.support.cli_run import run_cli
from tests.support.damage import alter_a_count, truncate
from tests.support.fixture_server import csv_answer, export_routes, fixture_server
from tests.support.processes import wait_while_running

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
    wait_while_running(process, lambda: len(list(checkpoints.glob("*.json"))) >= 2)
    process.kill()
    process.wait()
    saved = len(list(checkpoints.glob("*.json")))
    assert 2 <= saved < 10, "the run should have been killed partway"
    # An entry is renamed into place whole: whatever the kill interrupted, every *.json is whole
    # (a temporary .entry.*.tmp may survive; it is never read).
    for entry in checkpoints.glob("*.json"):
        assert json.loads(entry.read_text(encoding="utf-8"))["download_id"]

    outcome = run_cli("small", "--server", server_url, "--checkpoint-dir", str(checkpoints))
    assert outcome.status == ExitCode.OK, outcome.stderr
    assert outcome.stdout == (ROOT / "small.json").read_text()
    assert f"{saved} of 10 download(s) taken from checkpoints" in outcome.stderr
    assert "warning" not in outcome.stderr
    assert len(list(checkpoints.glob("*.json"))) == 10  # an explicit directory keeps them


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


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        pytest.param(truncate, "is not whole JSON", id="truncated"),
        pytest.param(alter_a_count, "does not match its digest (it was altered)", id="altered"),
    ],
)
def test_a_damaged_entry_is_ignored_with_a_warning_and_the_answer_is_exact(
    server_url: str, tmp_path: Path, damage: Callable[[Path], None], problem: str
) -> None:
    first = run_cli("demo", "--server", server_url, "--checkpoint-dir", str(tmp_path))
    assert first.status == ExitCode.OK, first.stderr
    damaged = sorted(tmp_path.glob("*.json"))[0]
    download_id = json.loads(damaged.read_text(encoding="utf-8"))["download_id"]
    damage(damaged)
    outcome = run_cli("demo", "--server", server_url, "--checkpoint-dir", str(tmp_path))
    assert outcome.status == ExitCode.OK, outcome.stderr
    assert outcome.stdout == (ROOT / "demo.json").read_text()
    assert (
        f"cli: warning: checkpoint {damaged} {problem}: ignored; "
        f"download {download_id} is counted again\n"
    ) in outcome.stderr
    assert "1 of 2 download(s) taken from checkpoints" in outcome.stderr
    json.loads(damaged.read_text(encoding="utf-8"))  # counted again, and saved whole again


def test_unusable_checkpoint_dir_is_a_usage_error(server_url: str, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    outcome = run_cli("demo", "--server", server_url, "--checkpoint-dir", str(blocker / "sub"))
    assert outcome.status == ExitCode.USAGE
    assert outcome.stderr == (
        f"cli: error: cannot use checkpoint directory {blocker / 'sub'}: Not a directory\n"
    )


def test_no_checkpoint_with_a_checkpoint_dir_is_a_usage_error(tmp_path: Path) -> None:
    outcome = run_cli("demo", "--checkpoint-dir", str(tmp_path), "--no-checkpoint")
    assert outcome.status == ExitCode.USAGE
    assert outcome.stderr == (
        "cli: error: argument --no-checkpoint: not allowed with argument --checkpoint-dir "
        "(see cli --help)\n"
    )


def test_a_failed_run_keeps_its_work_in_the_default_place_for_the_same_command(
    user_cache_dir: Path,
) -> None:
    root = user_cache_dir / "export-tally" / "checkpoints"
    routes = export_routes("x", {d: HEADER + f"A,t,{d},1\n" for d in ("d1", "d2", "d3")})
    data = routes.pop("/api/export/x/d2/data")  # d2 disappeared: the others finish, then exit 3
    seen: list[tuple[str, dict[str, str]]] = []
    with fixture_server(routes, seen) as url:
        failed = run_cli("x", "--server", url)
        assert failed.status == ExitCode.UNREACHABLE
        (directory,) = {entry.parent for entry in root.rglob("*.json")}
        assert failed.stderr.splitlines()[-1] == (
            f"cli: 2 of 3 download(s) saved in {directory}: rerun the same command to resume them"
        )
        routes["/api/export/x/d2/data"] = data
        seen.clear()
        rerun = run_cli("x", "--server", url)
    assert rerun.status == ExitCode.OK, rerun.stderr
    assert rerun.json()["totals"] == {"d1": 1, "d2": 1, "d3": 1}
    assert [path for path, _ in seen if path.endswith("/data")] == ["/api/export/x/d2/data"]
    assert f"2 of 3 download(s) taken from checkpoints in {directory}" in rerun.stderr
    assert list(root.rglob("*")) == []


def test_no_checkpoint_keeps_nothing_and_promises_nothing(user_cache_dir: Path) -> None:
    routes = export_routes("x", {d: HEADER + f"A,t,{d},1\n" for d in ("d1", "d2")})
    routes.pop("/api/export/x/d2/data")
    with fixture_server(routes) as url:
        outcome = run_cli("x", "--server", url, "--no-checkpoint")
    assert outcome.status == ExitCode.UNREACHABLE
    assert "saved" not in outcome.stderr
    assert not (user_cache_dir / "export-tally").exists()


def test_an_unusable_cache_directory_is_a_warning_not_a_failure(
    user_cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = user_cache_dir / "blocker"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    with fixture_server(export_routes("x", {"d1": HEADER + "A,t,hr,1\n"})) as url:
        outcome = run_cli("x", "--server", url)
    assert outcome.status == ExitCode.OK, outcome.stderr
    assert outcome.json()["totals"] == {"hr": 1}
    assert outcome.stderr.startswith(f"cli: warning: cannot use checkpoint directory {blocker}/")
    assert "finished downloads are not kept (choose a place with --checkpoint-dir)" in (
        outcome.stderr
    )


def test_finished_parts_are_kept_and_a_rerun_fetches_only_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(IN_PROCESS_ROWS_VARIABLE, "0")  # a pool of workers, which splits
    body = HEADER + "".join(f"P{i % 3},t,hr,{i}\n" for i in range(300))
    routes = export_routes("x", {"d1": body, "d2": body})
    # Two downloads in two parts each (-j 4). d2's second part answers 404 until the server is
    # "fixed": a part that is gone, unlike other failures, lets the others finish first.
    routes["/api/export/x/d1/data"] = csv_answer(body, ranges=True)
    routes["/api/export/x/d2/data"] = csv_answer(body, ranges=True, gone_from=len(body) // 2)
    seen: list[tuple[str, dict[str, str]]] = []
    argv = ("x", "-j", "4", "--min-part-bytes", "500", "--checkpoint-dir", str(tmp_path))
    with fixture_server(routes, seen) as url:
        failed = run_cli(*argv, "--server", url)
        assert failed.status == ExitCode.UNREACHABLE, failed.stderr
        assert failed.stderr.splitlines()[-1] == (
            f"cli: 1 of 2 download(s) and 1 byte-range part(s) of the others saved in {tmp_path}: "
            "rerun the same command to resume them"
        )
        routes["/api/export/x/d2/data"] = csv_answer(body, ranges=True)
        seen.clear()
        rerun = run_cli(*argv, "--server", url)
    assert rerun.status == ExitCode.OK, rerun.stderr
    assert rerun.json()["totals"] == {"hr": 600}
    assert (
        f"1 of 2 download(s) and 1 byte-range part(s) of the others taken from checkpoints "
        f"in {tmp_path}"
    ) in rerun.stderr
    # Only d2 is fetched, cut where the first run cut it although it is the only one left: its
    # size and ETag (the probe), then the part not saved.
    fetched = [(path, headers["range"]) for path, headers in seen if path.endswith("/data")]
    assert fetched[0] == ("/api/export/x/d2/data", "bytes=0-65535")
    ((path, last_part),) = fetched[1:]
    assert path == "/api/export/x/d2/data"
    assert int(last_part.removeprefix("bytes=").rstrip("-")) >= len(body) // 2
    assert len(list(tmp_path.glob("*.json"))) == 2  # whole downloads only; d2's part is gone
