"""The tool as a process: signals, the embedded server, and what outlives what."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from export_tally.exitcodes import ExitCode

CLI = [sys.executable, "-m", "export_tally"]


def default_port_is_free() -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", 8000)) != 0


def wait_for(predicate, timeout: float = 60.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def env_without_server() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("EXPORT_SERVER_URL", "EXPORT_TALLY_NO_EMBEDDED")
    }
    return env


def server_children(pid: int) -> list[psutil.Process]:
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [c for c in children if "export_server" in " ".join(c.cmdline())]


def all_gone(processes: list[psutil.Process]) -> bool:
    return not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in processes)


@pytest.mark.skipif(not default_port_is_free(), reason="something listens on 127.0.0.1:8000")
def test_embedded_server_is_used_and_stopped_when_nothing_answers() -> None:
    result = subprocess.run(
        [*CLI, "demo"], capture_output=True, text=True, timeout=180, env=env_without_server()
    )
    assert result.returncode == 0, result.stderr
    assert "bundled mock server" in result.stderr
    assert '"P001"' in result.stdout


def test_no_embedded_fails_instead_of_starting_a_server(tmp_path: Path) -> None:
    env = {**env_without_server(), "EXPORT_TALLY_NO_EMBEDDED": "1"}
    if not default_port_is_free():
        pytest.skip("something listens on 127.0.0.1:8000")
    result = subprocess.run([*CLI, "demo"], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == ExitCode.UNREACHABLE
    assert "cannot reach http://127.0.0.1:8000" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    "sig, status", [(signal.SIGINT, ExitCode.INTERRUPTED), (signal.SIGTERM, ExitCode.TERMINATED)]
)
def test_signals_stop_everything_and_leave_no_output(
    sig: signal.Signals, status: ExitCode, tmp_path: Path
) -> None:
    if not default_port_is_free():
        pytest.skip("something listens on 127.0.0.1:8000")
    target = tmp_path / "out.json"
    process = subprocess.Popen(
        [*CLI, "large", "-o", str(target), "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env_without_server(),
    )  # fmt: skip
    # Wait until the run is under way: the embedded server and the workers exist.
    assert wait_for(lambda: len(psutil.Process(process.pid).children(recursive=True)) >= 3)
    time.sleep(1.0)
    descendants = psutil.Process(process.pid).children(recursive=True)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == status, stderr
    assert stderr.strip().splitlines()[-1] in ("cli: interrupted", "cli: terminated")
    assert wait_for(lambda: all_gone(descendants), timeout=15)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_kill_9_leaves_no_server_or_worker_behind() -> None:
    if not default_port_is_free():
        pytest.skip("something listens on 127.0.0.1:8000")
    process = subprocess.Popen(
        [*CLI, "large", "--no-progress"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env_without_server(),
    )  # fmt: skip
    assert wait_for(lambda: len(server_children(process.pid)) >= 1)
    assert wait_for(lambda: len(psutil.Process(process.pid).children(recursive=True)) >= 3)
    time.sleep(1.0)
    descendants = psutil.Process(process.pid).children(recursive=True)
    process.kill()
    process.wait()
    assert wait_for(lambda: all_gone(descendants), timeout=15)
