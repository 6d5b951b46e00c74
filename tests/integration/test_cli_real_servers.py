"""What real export servers need: credentials, TLS, proxies, redirects, downloads that vanish."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from export_tally.cli.exitcodes import ExitCode
from export_tally.cli.settings import IN_PROCESS_ROWS_VARIABLE
from tests.support.cli_run import run_cli
from tests.support.fixture_server import Answer, csv_answer, export_routes, fixture_server

HEADER = "patient_id,event_time,event_type,value\n"
SECRET = "s3cr3t-t0ken-value"
BODIES = {"d1": HEADER + "A,t,hr,1\n", "d2": HEADER + "B,t,hr,2\nA,t,hr,3\n"}


def guarded(routes: dict[str, Answer], name: str, value: str) -> dict[str, Answer]:
    return {path: dataclasses.replace(a, require=(name, value)) for path, a in routes.items()}


def test_token_is_sent_as_bearer_and_never_shown(tmp_path: Path) -> None:
    routes = guarded(export_routes("x", BODIES), "Authorization", f"Bearer {SECRET}")
    with fixture_server(routes) as url:
        outcome = run_cli(
            "x", "--server", url, "--token", SECRET, "--checkpoint-dir", str(tmp_path)
        )
    assert outcome.status == ExitCode.OK, outcome.stderr
    assert outcome.json()["totals"] == {"hr": 3}
    assert SECRET not in outcome.stdout + outcome.stderr
    for entry in tmp_path.iterdir():
        assert SECRET not in entry.name and SECRET not in entry.read_text()


def test_token_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPORT_SERVER_TOKEN", SECRET)
    routes = guarded(export_routes("x", BODIES), "Authorization", f"Bearer {SECRET}")
    with fixture_server(routes) as url:
        outcome = run_cli("x", "--server", url)
    assert outcome.status == ExitCode.OK, outcome.stderr


def test_custom_header_is_sent() -> None:
    routes = guarded(export_routes("x", BODIES), "X-Api-Key", SECRET)
    with fixture_server(routes) as url:
        outcome = run_cli("x", "--server", url, "--header", f"X-Api-Key: {SECRET}")
    assert outcome.status == ExitCode.OK, outcome.stderr


def test_refused_credentials_are_not_retried_and_exit_3() -> None:
    routes = guarded(export_routes("x", BODIES), "Authorization", "Bearer right")
    seen: list[tuple[str, dict[str, str]]] = []
    with fixture_server(routes, seen) as url:
        outcome = run_cli("x", "--server", url, "--token", SECRET)
    assert outcome.status == ExitCode.UNREACHABLE
    message = outcome.stderr.strip()
    assert "refused the credentials (HTTP 401)" in message and "\n" not in message
    assert SECRET not in message
    assert len(seen) == 1


def test_malformed_header_flag_is_a_usage_error() -> None:
    outcome = run_cli("x", "--server", "http://127.0.0.1:9", "--header", "no colon here")
    assert outcome.status == ExitCode.USAGE
    assert "Name: value" in outcome.stderr


def test_redirect_to_another_host_is_refused_by_default() -> None:
    with fixture_server(export_routes("x", BODIES)) as elsewhere:
        routes = export_routes("x", BODIES)
        routes["/api/export/x/d1/data"] = Answer(
            b"", status=302, headers={"Location": f"{elsewhere}/api/export/x/d1/data"}
        )
        with fixture_server(routes) as url:
            outcome = run_cli("x", "--server", url, "--token", SECRET)
    assert outcome.status == ExitCode.UNREACHABLE
    assert "redirected to another host" in outcome.stderr
    assert "--follow-redirects-anywhere" in outcome.stderr


def test_redirect_anywhere_never_carries_credentials() -> None:
    seen: list[tuple[str, dict[str, str]]] = []
    with fixture_server(export_routes("x", BODIES), seen) as elsewhere:
        routes = export_routes("x", BODIES)
        routes["/api/export/x/d1/data"] = Answer(
            b"", status=307, headers={"Location": f"{elsewhere}/api/export/x/d1/data"}
        )
        with fixture_server(routes) as url:
            outcome = run_cli(
                "x", "--server", url, "--token", SECRET, "--header", f"X-Api-Key: {SECRET}",
                "--follow-redirects-anywhere",
            )  # fmt: skip
    assert outcome.status == ExitCode.OK, outcome.stderr
    assert outcome.json()["totals"] == {"hr": 3}
    assert [path for path, _ in seen] == ["/api/export/x/d1/data"]
    headers = seen[0][1]
    assert "authorization" not in headers and "x-api-key" not in headers


def test_redirect_within_the_server_is_followed() -> None:
    routes = export_routes("x", BODIES)
    routes["/api/export/x/d1/data"] = Answer(b"", status=302, headers={"Location": "/moved/d1"})
    routes["/moved/d1"] = export_routes("x", BODIES)["/api/export/x/d1/data"]
    with fixture_server(routes) as url:
        outcome = run_cli("x", "--server", url)
    assert outcome.status == ExitCode.OK, outcome.stderr


def test_downloads_that_vanish_are_all_named_after_the_others_finish() -> None:
    bodies = {**BODIES, "d3": HEADER + "C,t,hr,1\n"}
    routes = export_routes("x", bodies)
    del routes["/api/export/x/d1/data"]
    del routes["/api/export/x/d3/data"]
    seen: list[tuple[str, dict[str, str]]] = []
    with fixture_server(routes, seen) as url:
        outcome = run_cli("x", "--server", url, "-j", "1")
    assert outcome.status == ExitCode.UNREACHABLE
    message = outcome.stderr.strip()
    assert "2 download(s) disappeared" in message and "d1" in message and "d3" in message
    assert "/api/export/x/d2/data" in [path for path, _ in seen]


def test_loopback_server_ignores_proxy_variables(server_url: str) -> None:
    # A proxy that does not exist: a loopback server must be reached directly all the same.
    env = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": ""}
    result = subprocess.run(
        [sys.executable, "-m", "export_tally", "--list", "--server", server_url],
        capture_output=True, text=True, timeout=60, env={**__import__("os").environ, **env},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["demo", "small", "large"]


def test_insecure_warns() -> None:
    with fixture_server(export_routes("x", BODIES)) as url:
        outcome = run_cli("x", "--server", url, "--insecure")
    assert outcome.status == ExitCode.OK
    assert "warning: --insecure" in outcome.stderr


def test_missing_cacert_is_a_usage_error(tmp_path: Path) -> None:
    outcome = run_cli(
        "x", "--server", "https://127.0.0.1:9", "--cacert", str(tmp_path / "nope.pem")
    )
    assert outcome.status == ExitCode.USAGE
    assert "no such file" in outcome.stderr


def test_proxy_variables_are_honoured_for_other_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    # The fixture server plays the proxy; the export server's name never needs to resolve.
    seen: list[tuple[str, dict[str, str]]] = []
    with fixture_server(export_routes("x", BODIES), seen) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy)
        monkeypatch.setenv("NO_PROXY", "")
        outcome = run_cli("x", "--server", "http://export.invalid")
    assert outcome.status == ExitCode.OK, outcome.stderr
    assert outcome.json()["totals"] == {"hr": 3}
    assert seen and all(path.startswith("http://export.invalid/") for path, _ in seen)


def test_a_redirect_loop_ends_with_exit_3() -> None:
    routes = export_routes("x", BODIES)
    routes["/api/export/x/d1/data"] = Answer(
        b"", status=302, headers={"Location": "/api/export/x/d1/data"}
    )
    with fixture_server(routes) as url:
        # No checkpoints: whether d2 was saved before d1 failed (a second line) is not the point.
        outcome = run_cli("x", "--server", url, "--no-checkpoint")
    assert outcome.status == ExitCode.UNREACHABLE
    message = outcome.stderr.strip()
    assert "more than 5 redirects" in message and "\n" not in message


def test_a_redirect_loop_for_a_byte_range_part_ends_with_exit_3(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(IN_PROCESS_ROWS_VARIABLE, "0")  # a pool of workers, which splits
    body = HEADER + "".join(f"P{i % 3},t,hr,{i}\n" for i in range(200))
    routes = export_routes("x", {"d1": body})
    # The first bytes (the split probe) are served; every part's range request loops.
    routes["/api/export/x/d1/data"] = csv_answer(body, ranges=True, redirect_parts=True)
    seen: list[tuple[str, dict[str, str]]] = []
    with fixture_server(routes, seen) as url:
        outcome = run_cli("x", "--server", url, "-j", "4", "--min-part-bytes", "500")
    assert outcome.status == ExitCode.UNREACHABLE
    message = outcome.stderr.strip()
    assert "more than 5 redirects" in message and "\n" not in message
    parts = [h["range"] for path, h in seen if path.endswith("/data") and "range" in h]
    assert any(not r.startswith("bytes=0-") for r in parts)  # it was a part that looped
