"""Every error path: its exit status and its one-line message."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from export_tally.cli import embedded
from export_tally.cli.exitcodes import ExitCode
from tests.support.cli_run import one_line, run_cli
from tests.support.fixture_server import (
    Answer,
    csv_answer,
    export_routes,
    fixture_server,
    json_answer,
)
from tests.support.processes import default_port_is_free


def test_exit_codes_are_pinned() -> None:
    assert {code.name: code.value for code in ExitCode} == {
        "OK": 0, "UNEXPECTED": 1, "USAGE": 2, "UNREACHABLE": 3, "PROTOCOL": 4,
        "REPORT": 5, "INTERRUPTED": 130, "TERMINATED": 143,
    }  # fmt: skip


def test_unknown_export_is_a_usage_error_listing_the_known_ones(server_url: str) -> None:
    outcome = run_cli("nope", "--server", server_url)
    assert outcome.status == ExitCode.USAGE
    message = one_line(outcome.stderr)
    assert "'nope' not found" in message
    assert "demo, small, large" in message


def test_unreachable_explicit_server_is_an_error_not_replaced() -> None:
    outcome = run_cli("demo", "--server", "http://127.0.0.1:9")
    assert outcome.status == ExitCode.UNREACHABLE
    message = one_line(outcome.stderr)
    assert "cannot reach http://127.0.0.1:9" in message
    assert "uv run server" in message and "--server" in message
    assert "bundled" not in outcome.stderr


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["-o", "/nonexistent/dir/out.json", "--debug"], id="debug"),
        pytest.param(["-o", "/nonexistent/dir/out.json", "--deb"], id="abbreviated"),  # a prefix
        pytest.param(["--bogus", "--debug"], id="arguments-that-do-not-parse"),
    ],
)
def test_debug_shows_the_trace_then_the_one_line(argv: list[str]) -> None:
    outcome = run_cli("demo", *argv)
    assert outcome.status == ExitCode.USAGE
    assert outcome.stderr.startswith("Traceback (most recent call last):")
    assert outcome.stderr.strip().splitlines()[-1].startswith("cli: error: ")


@pytest.mark.parametrize(
    "argv, fragment",
    [
        pytest.param([], "export id is required", id="no-export-id"),
        pytest.param(["demo", "-j", "0"], "must be at least 1", id="zero-jobs"),
        pytest.param(["demo", "--jobs", "x"], "not a whole number", id="jobs-not-a-number"),
        pytest.param(["demo", "--bogus"], "unrecognized arguments", id="unknown-flag"),
        pytest.param(["demo", "--server", "ftp://x"], "not an http", id="bad-server-url"),
        pytest.param(["demo", "--timeout", "0"], "more than 0", id="zero-timeout"),
        pytest.param(["demo", "--retries", "-1"], "at least 0", id="negative-retries"),
        pytest.param(["demo", "--on-bad-row", "ignore"], "invalid choice", id="bad-row-mode"),
        pytest.param(["demo", "-o", "/nonexistent/dir/out.json"], "does not exist", id="output-dir-missing"),
        pytest.param(["demo", "-o", "."], "cannot write .: it is a directory", id="output-is-a-directory"),
    ],
)  # fmt: skip
def test_usage_errors(argv: list[str], fragment: str) -> None:
    outcome = run_cli(*argv)
    assert outcome.status == ExitCode.USAGE
    assert fragment in one_line(outcome.stderr)


FAILS_TO_START = "import sys\nsys.exit('export_server: error: no room (a stand-in)')\n"
NEVER_LISTENS = "import time\ntime.sleep(600)\n"  # stopped by the tool once it gives up


@pytest.mark.skipif(not default_port_is_free(), reason="something listens on 127.0.0.1:8000")
@pytest.mark.parametrize(
    "server_main, wait, fragment",
    [
        pytest.param(FAILS_TO_START, embedded.START_TIMEOUT, "failed to start: export_server: error: no room (a stand-in);", id="fails-to-start"),
        pytest.param(NEVER_LISTENS, 1.0, "did not start within a minute;", id="never-listens"),  # not a minute of silence
    ],
)  # fmt: skip
def test_a_bundled_server_that_does_not_start_is_exit_3_with_a_way_on(
    server_main: str, wait: float, fragment: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The tool runs `python -m export_server`: a stand-in package ahead on the path is run instead.
    package = tmp_path / "stand-in" / "export_server"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text(server_main)
    path = [str(package.parent), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(path))
    monkeypatch.delenv("EXPORT_SERVER_URL", raising=False)
    monkeypatch.delenv("EXPORT_TALLY_NO_EMBEDDED", raising=False)
    monkeypatch.setattr(embedded, "START_TIMEOUT", wait)
    outcome = run_cli("demo")
    assert outcome.status == ExitCode.UNREACHABLE
    message = one_line(outcome.stderr)
    assert fragment in message
    assert message.endswith("start the server with `uv run server`, or pass --server")


def test_output_in_a_directory_that_is_not_writable_is_a_usage_error(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.access(locked, os.W_OK):
        pytest.skip("this user may write into any directory (root, as in CI)")
    outcome = run_cli("demo", "-o", str(locked / "out.json"))
    assert outcome.status == ExitCode.USAGE
    assert f"directory {locked} is not writable" in one_line(outcome.stderr)


def test_html_instead_of_json_is_a_protocol_error() -> None:
    page = Answer(b"<html><body>Login</body></html>", content_type="text/html")
    with fixture_server({"/api/export": page, "/api/export/demo": page}) as url:
        outcome = run_cli("demo", "--server", url)
    assert outcome.status == ExitCode.PROTOCOL
    assert "HTML instead of JSON" in one_line(outcome.stderr)


def test_wrong_shape_json_is_a_protocol_error() -> None:
    routes = {"/api/export/demo": json_answer({"data": {"id": "demo", "download_ids": "nope"}})}
    with fixture_server(routes) as url:
        outcome = run_cli("demo", "--server", url)
    assert outcome.status == ExitCode.PROTOCOL
    assert "download_ids" in one_line(outcome.stderr)


def test_metadata_with_unknown_extra_fields_is_tolerated() -> None:
    routes = export_routes("x", {"d1": "patient_id,event_time,event_type,value\nA,t,hr,1\n"})
    routes["/api/export/x/d1"] = json_answer(
        {"data": {"id": "d1", "rows": 1, "event_types": ["hr"], "patients": ["A"],
                  "start_time": "", "end_time": "", "shiny": {"new": True}}}
    )  # fmt: skip
    seen: list[tuple[str, dict[str, str]]] = []
    with fixture_server(routes, seen) as url:
        outcome = run_cli("x", "--server", url)
    assert outcome.status == ExitCode.OK, outcome.stderr
    assert outcome.json() == {"patients": {"A": {"hr": 1}}, "totals": {"hr": 1}}
    # The answer with the extra field was read (its `rows` checked against the body), not skipped.
    assert [path for path, _ in seen].count("/api/export/x/d1") == 1


def test_row_count_mismatch_is_a_protocol_error_naming_both_numbers() -> None:
    body = "patient_id,event_time,event_type,value\nA,t,hr,1\nB,t,hr,2\n"
    with fixture_server(export_routes("x", {"d1": body}, rows={"d1": 5})) as url:
        outcome = run_cli("x", "--server", url)
    assert outcome.status == ExitCode.PROTOCOL
    message = one_line(outcome.stderr)
    assert "d1" in message and "counted 2 rows" in message and "declares 5" in message


def test_header_without_the_four_columns_is_a_protocol_error() -> None:
    body = "patient_id,when,event_type,value\nA,t,hr,1\n"
    with fixture_server(export_routes("x", {"d1": body})) as url:
        outcome = run_cli("x", "--server", url)
    assert outcome.status == ExitCode.PROTOCOL
    assert "d1" in one_line(outcome.stderr)


def test_body_that_is_html_is_a_protocol_error() -> None:
    routes = export_routes("x", {"d1": "patient_id,event_time,event_type,value\n"})
    routes["/api/export/x/d1/data"] = Answer(b"<html></html>", content_type="text/html")
    with fixture_server(routes) as url:
        outcome = run_cli("x", "--server", url)
    assert outcome.status == ExitCode.PROTOCOL
    assert "instead of CSV" in one_line(outcome.stderr)


def test_malformed_row_fails_with_its_line_number() -> None:
    body = "patient_id,event_time,event_type,value\nA,t,hr,1\nB,t,hr\nC,t,hr,3\n"
    with fixture_server(export_routes("x", {"d1": body})) as url:
        outcome = run_cli("x", "--server", url)
    assert outcome.status == ExitCode.PROTOCOL
    message = one_line(outcome.stderr)
    assert "d1" in message and "line 3" in message


def test_truncated_body_fails_with_exit_3() -> None:
    body = b"patient_id,event_time,event_type,value\nA,t,hr,1\nB,t,h"
    routes = export_routes("x", {"d1": body}, rows={"d1": 2})
    routes["/api/export/x/d1/data"] = csv_answer(body, declared_length=len(body) + 100)
    with fixture_server(routes) as url:
        outcome = run_cli("x", "--server", url, "--retries", "1")
    assert outcome.status == ExitCode.UNREACHABLE
    assert "d1" in one_line(outcome.stderr)


@pytest.mark.parametrize(
    "bodies",
    [
        pytest.param({}, id="no-downloads"),
        pytest.param({"d1": "patient_id,event_time,event_type,value\n"}, id="header-only"),
        pytest.param({"d1": ""}, id="empty-body"),
    ],
)
def test_empty_is_valid(bodies: dict[str, str]) -> None:
    with fixture_server(export_routes("x", bodies)) as url:
        outcome = run_cli("x", "--server", url)
    assert outcome.status == ExitCode.OK, outcome.stderr
    assert outcome.json() == {"patients": {}, "totals": {}}


def test_a_stalled_stream_is_detected_and_retried() -> None:
    body = "patient_id,event_time,event_type,value\n" + "A,t,hr,1\n" * 2000
    routes = export_routes("x", {"d1": body})
    routes["/api/export/x/d1/data"] = csv_answer(body, stalls=1, stall_seconds=3)
    with fixture_server(routes) as url:
        outcome = run_cli("x", "--server", url, "--timeout", "0.5", "-j", "1")
    assert outcome.status == ExitCode.OK, outcome.stderr
    assert outcome.json() == {"patients": {"A": {"hr": 2000}}, "totals": {"hr": 2000}}
    assert "recovered from 1 failed attempt(s)" in outcome.stderr


def test_a_stream_that_always_stalls_ends_with_exit_3() -> None:
    body = "patient_id,event_time,event_type,value\n" + "A,t,hr,1\n" * 2000
    routes = export_routes("x", {"d1": body})
    routes["/api/export/x/d1/data"] = csv_answer(body, stalls=99, stall_seconds=2)
    with fixture_server(routes) as url:
        outcome = run_cli("x", "--server", url, "--timeout", "0.3", "--retries", "1", "-j", "1")
    assert outcome.status == ExitCode.UNREACHABLE
    assert "timed out" in one_line(outcome.stderr)
