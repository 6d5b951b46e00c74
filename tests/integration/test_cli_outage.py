"""Outages are measured in time: a server that goes away and comes back is waited for, for up to
--max-outage seconds; the tool says so once when it goes and once when it is back.

The real server is killed with SIGKILL in the middle of a run of the tool (a process, as a user
runs it) and started again on the same port; a gateway that answers 503 is the fixture server's.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from export_tally.cli.exitcodes import ExitCode
from tests.support.cli_run import run_cli
from tests.support.fixture_server import export_routes, fixture_server
from tests.support.servers import RunningServer, running_server

ROOT = Path(__file__).resolve().parents[2]
BODIES = {"d1": "patient_id,event_time,event_type,value\nA,t,hr,1\n"}
GONE = r"cli: server unreachable since \d\d:\d\d:\d\d; retrying for up to (\S+) s$"
BACK = r"cli: server back at \d\d:\d\d:\d\d, after \d+ s unreachable$"
# A progress bar that has counted some rows: "small:   7%|...| 505k/7.08M [...]".
COUNTING = r"^small: .*\| [1-9][\d.]*[kM]?/"


class Tool:
    """The tool as a process; its stderr lines (progress bar updates included) as they come."""

    def __init__(self, *argv: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "export_tally", *argv],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        self.lines: list[str] = []
        self._grew = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        """Collect stderr as it comes: the bar redraws itself with \r and no newline, so the
        pipe is read in whatever pieces arrive, and each \r or \n ends a line."""
        assert self.process.stderr is not None
        pending = b""
        while piece := os.read(self.process.stderr.fileno(), 65536):
            *complete, pending = re.split(rb"[\r\n]", pending + piece)
            with self._grew:
                self.lines.extend(line.decode() for line in complete if line)
                self._grew.notify_all()
        with self._grew:
            if pending:
                self.lines.append(pending.decode())
            self._grew.notify_all()

    def wait_for(self, pattern: str, timeout: float = 120.0) -> str:
        """The first stderr line matching `pattern`; fails if the tool ends first."""
        with self._grew:
            found = self._grew.wait_for(
                lambda: (
                    any(re.search(pattern, line) for line in self.lines)
                    or not self._reader.is_alive()
                ),
                timeout,
            )
            matches = [line for line in self.lines if re.search(pattern, line)]
        assert found and matches, f"no line matching {pattern!r}:\n" + "\n".join(self.lines)
        return matches[0]

    def finish(self, timeout: float = 300.0) -> tuple[int, str, str]:
        """Exit status, stdout and stderr (without the bar's redraws) once the tool has ended."""
        assert self.process.stdout is not None
        stdout = self.process.stdout.read()  # stderr is the reader's alone
        self.process.wait(timeout)
        self._reader.join(timeout)
        messages = [line for line in self.lines if line.startswith("cli: ")]
        return self.process.returncode, stdout.decode(), "\n".join(messages)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@contextmanager
def running_tool(*argv: str) -> Iterator[Tool]:
    tool = Tool(*argv)
    try:
        yield tool
    finally:
        tool.stop()


@pytest.fixture
def small_server(warm_server: RunningServer, server_cache_dir: Path) -> Iterator[RunningServer]:
    """A server of our own (to kill), on the session's warm cache."""
    with running_server(cache_dir=server_cache_dir) as running:
        yield running


def killed(running: RunningServer) -> None:
    running.process.kill()  # SIGKILL: no goodbye to the clients
    running.process.wait()


@pytest.mark.slow
def test_a_server_restarted_mid_run_is_waited_for_and_the_answer_is_exact(
    small_server: RunningServer, server_cache_dir: Path
) -> None:
    port = str(urlsplit(small_server.url).port)
    with running_tool("small", "--server", small_server.url, "-j", "2", "--progress") as tool:
        tool.wait_for(COUNTING)
        killed(small_server)
        assert tool.wait_for(GONE).endswith("up to 120 s")
        with running_server(["--port", port], cache_dir=server_cache_dir) as again:
            assert again.url == small_server.url
            status, stdout, messages = tool.finish()
    assert status == ExitCode.OK, messages
    assert stdout == (ROOT / "small.json").read_text()
    assert len(re.findall(GONE, messages, re.M)) == 1, messages  # said once, for every worker
    assert len(re.findall(BACK, messages, re.M)) == 1, messages
    # The streams the kill cut off went on from where they stopped (same ETag after the restart).
    resumed = re.search(r"recovered from \d+ failed attempt\(s\): (\d+) resumed", messages)
    assert resumed and int(resumed[1]) > 0, messages


@pytest.mark.slow
def test_a_server_down_longer_than_max_outage_ends_the_run_with_exit_3(
    small_server: RunningServer,
) -> None:
    argv = ("small", "--server", small_server.url, "--progress", "--max-outage", "2")
    with running_tool(*argv) as tool:
        tool.wait_for(COUNTING)
        killed(small_server)
        status, stdout, messages = tool.finish()
    assert status == ExitCode.UNREACHABLE, messages
    assert stdout == ""
    assert re.search(GONE, messages, re.M)[1] == "2"  # type: ignore[index]
    last = messages.splitlines()[-1]
    assert last.startswith(f"cli: error: GET {small_server.url}/api/export/small/")
    assert "connection refused or failed" in last
    assert re.search(r"the server was unreachable for \d+ s \(--max-outage 2\)$", last)


def test_metadata_waits_out_a_gateway_outage_whatever_the_retries() -> None:
    routes = export_routes("x", BODIES)
    routes["/api/export/x/d1"].unavailable = 3  # 503s: not counted against --retries 0
    with fixture_server(routes) as url:
        outcome = run_cli("x", "--server", url, "--retries", "0")
    assert outcome.status == ExitCode.OK, outcome.stderr
    assert outcome.json() == {"patients": {"A": {"hr": 1}}, "totals": {"hr": 1}}
    assert re.search(GONE, outcome.stderr, re.M) and re.search(BACK, outcome.stderr, re.M)


def test_a_gateway_outage_longer_than_max_outage_ends_with_exit_3() -> None:
    routes = export_routes("x", BODIES)
    routes["/api/export/x/d1/data"].unavailable = 10**6
    with fixture_server(routes) as url:
        outcome = run_cli("x", "--server", url, "--max-outage", "0.5")
    assert outcome.status == ExitCode.UNREACHABLE
    lines = outcome.stderr.strip().splitlines()
    assert re.fullmatch(GONE, lines[0]) and lines[0].endswith("up to 0.5 s")
    assert len(lines) == 2, outcome.stderr
    assert f"GET {url}/api/export/x/d1/data failed: HTTP 503" in lines[1]
    assert lines[1].endswith("(--max-outage 0.5)")
    # The tool's own measure; at most one backoff (5 s) past the limit, plus slack for a busy machine.
    waited = re.search(r"unreachable for (\d+) s", lines[1])
    assert waited and int(waited[1]) < 0.5 + 5 + 10


@pytest.mark.parametrize("value", ["0", "-3", "soon", "nan"])
def test_max_outage_must_be_a_positive_number_of_seconds(value: str) -> None:
    outcome = run_cli("x", "--server", "http://127.0.0.1:9", "--max-outage", value)
    assert outcome.status == ExitCode.USAGE
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1 and "--max-outage" in lines[0], outcome.stderr
