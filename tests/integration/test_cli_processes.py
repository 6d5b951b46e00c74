"""The tool as a process: signals, the embedded server, and what outlives what.

Each run here is a subprocess in a session (and process group) of its own, as a shell would start
it, so that "nothing is left behind" has a precise meaning: once the tool has exited, no process
of its group remains, neither running nor a zombie waiting to be reaped. That is checked right at
exit, without waiting: the tool must have reaped everything it started (its worker processes, the
bundled server) and the bundled server everything it started (its generator processes).

The test process makes itself a child subreaper (Linux), so a process the tool did not reap is
adopted by the test rather than by init: one that had already exited stays visible as a zombie
instead of vanishing the moment init reaps it, and the check does not depend on that race.
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import psutil
import pytest

from export_tally.cli.exitcodes import ExitCode
from export_tally.cli.settings import IN_PROCESS_ROWS_VARIABLE
from tests.support.fixture_server import export_routes, fixture_server
from tests.support.processes import default_port_is_free, wait_for

CLI = [sys.executable, "-m", "export_tally"]
ROOT = Path(__file__).resolve().parents[2]
POOL = {IN_PROCESS_ROWS_VARIABLE: "0"}  # a pool of worker processes even for small exports
PR_SET_CHILD_SUBREAPER = 36


@pytest.fixture(autouse=True)
def adopt_orphans() -> Iterator[None]:
    """Orphans of the tools a test starts become this process's children (see the docstring);
    afterwards, any adopted process is killed and reaped, so none outlives the test."""
    libc = ctypes.CDLL(None, use_errno=True)
    if not sys.platform.startswith("linux") or libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0):
        pytest.skip("needs Linux's child subreaper")
    try:
        yield
    finally:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
        ours = os.getpgid(0)
        for child in psutil.Process().children():
            try:
                if os.getpgid(child.pid) != ours:  # a tool's group: adopted
                    child.kill()
                    os.waitpid(child.pid, 0)
            except (ProcessLookupError, ChildProcessError, psutil.Error):
                continue


needs_default_port = pytest.mark.skipif(
    not default_port_is_free(), reason="something listens on 127.0.0.1:8000"
)


def tool_env(cache: Path, **extra: str) -> dict[str, str]:
    """The environment of a run that may start the bundled server, whose cache is under `cache`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("EXPORT_SERVER_URL", "EXPORT_TALLY_NO_EMBEDDED", IN_PROCESS_ROWS_VARIABLE)
    }
    return {**env, "XDG_CACHE_HOME": str(cache), **extra}


def group_members(pgid: int) -> list[str]:
    """Every process of the process group, zombies included, described."""
    members = []
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) != pgid:
                continue
        except ProcessLookupError:
            continue
        try:
            described = f"{process.status()} {process.cmdline()}"
        except psutil.Error:  # a zombie has no command line any more
            described = "exited, not reaped"
        members.append(f"{process.pid}: {described}")
    return members


def start(args: list[str], env: dict[str, str], stderr: IO[str]) -> subprocess.Popen[str]:
    """The tool in a session (and process group) of its own; stdout is piped."""
    return subprocess.Popen(
        [*CLI, *args], stdout=subprocess.PIPE, stderr=stderr, text=True, env=env,
        start_new_session=True,
    )  # fmt: skip


def exited(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def bundled_url(stderr: Path) -> str | None:
    match = re.search(r"bundled mock server at (http://\S+)", stderr.read_text())
    return match[1] if match else None


def rows_counted(stderr: Path) -> bool:
    """Whether the progress bar shows rows counted: a task is under way."""
    return re.search(r"\| *[1-9][0-9.]*[kM]?/", stderr.read_text()) is not None


def start_counting(
    export_id: str, tmp_path: Path, env: dict[str, str], *extra: str
) -> tuple[subprocess.Popen[str], Path]:
    """The tool on `export_id` with the bundled server (on an empty cache: it must generate),
    once it has counted some rows. Returns the tool and the file its stderr goes to."""
    stderr = tmp_path / "stderr"
    with stderr.open("w") as sink:
        tool = start([export_id, "--progress", *extra], tool_env(tmp_path / "cache", **env), sink)
    assert wait_for(lambda: rows_counted(stderr) or tool.poll() is not None), stderr.read_text()
    assert tool.poll() is None, stderr.read_text()
    assert bundled_url(stderr) is not None, stderr.read_text()
    return tool, stderr


@pytest.fixture
def broken_export() -> Iterator[str]:
    """A server whose only download has a malformed row: the run fails in a worker (exit 4)."""
    header = "patient_id,event_time,event_type,value\n"
    body = header + "".join(f"P{i},t,hr,1\n" for i in range(100)) + "P9,t\n"
    with fixture_server(export_routes("x", {"d1": body}, rows={"d1": 101})) as url:
        yield url


def run_to_the_end(args: list[str], env: dict[str, str], tmp_path: Path) -> tuple[int, str, str]:
    """Run the tool to its exit; then, at once, nothing of its process group may remain."""
    stderr = tmp_path / "stderr"
    with stderr.open("w") as sink:
        tool = start(args, env, sink)
        stdout, _ = tool.communicate(timeout=300)
    assert group_members(tool.pid) == []
    return tool.returncode, stdout, stderr.read_text()


@pytest.mark.parametrize("pool", [False, True], ids=["in-process", "worker-pool"])
def test_a_successful_run_leaves_no_process(server_url: str, tmp_path: Path, pool: bool) -> None:
    env = tool_env(tmp_path, **(POOL if pool else {}))
    status, stdout, stderr = run_to_the_end(["demo", "--server", server_url], env, tmp_path)
    assert status == ExitCode.OK, stderr
    assert stdout == (ROOT / "demo.json").read_text()


@pytest.mark.parametrize(
    "args, env, status, message",
    [
        (["demo", "--jobs", "0"], {}, ExitCode.USAGE, "argument -j/--jobs: 0 must be at least 1"),
        (
            ["demo"],
            {IN_PROCESS_ROWS_VARIABLE: "many"},
            ExitCode.USAGE,
            f"${IN_PROCESS_ROWS_VARIABLE}: 'many' is not a whole number",
        ),
        (
            ["demo", "--server", "http://127.0.0.1:9"],
            {},
            ExitCode.UNREACHABLE,
            "cannot reach http://127.0.0.1:9",
        ),
    ],
    ids=["usage-error", "bad-threshold", "unreachable-server"],
)
def test_a_run_that_cannot_start_leaves_no_process(
    args: list[str], env: dict[str, str], status: ExitCode, message: str, tmp_path: Path
) -> None:
    result, _, stderr = run_to_the_end(args, tool_env(tmp_path, **env), tmp_path)
    assert result == status
    assert stderr.startswith(f"cli: error: {message}"), stderr


def test_a_failed_download_leaves_no_process(broken_export: str, tmp_path: Path) -> None:
    args = ["x", "--server", broken_export]
    status, _, stderr = run_to_the_end(args, tool_env(tmp_path, **POOL), tmp_path)
    assert status == ExitCode.PROTOCOL, stderr
    assert "download d1" in stderr


@needs_default_port
def test_the_bundled_server_is_used_and_leaves_no_process(tmp_path: Path) -> None:
    # An empty cache: the bundled server must start its generator processes, and reap them.
    status, stdout, stderr = run_to_the_end(["demo"], tool_env(tmp_path / "cache"), tmp_path)
    assert status == ExitCode.OK, stderr
    assert "bundled mock server" in stderr
    assert stdout == (ROOT / "demo.json").read_text()


def test_no_embedded_fails_instead_of_starting_a_server(tmp_path: Path) -> None:
    env = {**tool_env(tmp_path), "EXPORT_TALLY_NO_EMBEDDED": "1"}
    if not default_port_is_free():
        pytest.skip("something listens on 127.0.0.1:8000")
    result = subprocess.run([*CLI, "demo"], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == ExitCode.UNREACHABLE
    assert "cannot reach http://127.0.0.1:8000" in result.stderr


EVERYTHING_IN_PROCESS = {IN_PROCESS_ROWS_VARIABLE: str(10**12)}


@needs_default_port
@pytest.mark.slow
@pytest.mark.parametrize(
    "sig, status, env",
    [
        (signal.SIGINT, ExitCode.INTERRUPTED, POOL),
        (signal.SIGTERM, ExitCode.TERMINATED, POOL),
        (signal.SIGINT, ExitCode.INTERRUPTED, EVERYTHING_IN_PROCESS),
    ],
    ids=["ctrl-c-worker-pool", "sigterm-worker-pool", "ctrl-c-in-process"],
)
def test_signals_stop_everything_and_leave_no_output(
    sig: signal.Signals, status: ExitCode, env: dict[str, str], tmp_path: Path
) -> None:
    target = tmp_path / "out.json"
    tool, stderr = start_counting("small", tmp_path, env, "-o", str(target))
    if sig == signal.SIGINT:
        os.killpg(tool.pid, sig)  # Ctrl-C in a terminal reaches the whole foreground group
    else:
        tool.send_signal(sig)
    tool.communicate(timeout=60)
    assert group_members(tool.pid) == []
    assert tool.returncode == status, stderr.read_text()
    last = stderr.read_text().strip().splitlines()[-1]
    assert last.endswith(("cli: interrupted", "cli: terminated")), last
    assert not target.exists()
    assert not list(tmp_path.glob(".out.json.*"))


@pytest.mark.slow
@needs_default_port
def test_a_worker_killed_mid_task_fails_the_run_and_leaves_no_process(tmp_path: Path) -> None:
    tool, stderr = start_counting("small", tmp_path, POOL)
    # The tool's children: the bundled server, and its workers (forked: the tool's command line).
    (worker, *_) = [
        c for c in psutil.Process(tool.pid).children() if "export_server" not in c.cmdline()
    ]
    worker.kill()
    tool.communicate(timeout=60)
    assert group_members(tool.pid) == []
    assert tool.returncode == ExitCode.UNEXPECTED
    last = stderr.read_text().strip().splitlines()[-1]
    assert re.search(
        r"cli: error: a worker process exited \(status -9\) while counting download \S+$", last
    ), last


@pytest.mark.slow
@needs_default_port
def test_kill_9_leaves_no_server_or_worker_behind(tmp_path: Path) -> None:
    tool, _ = start_counting("small", tmp_path, POOL)
    descendants = psutil.Process(tool.pid).children(recursive=True)
    assert len(descendants) >= 3  # the server, a generator, a worker at least
    tool.kill()
    tool.wait()
    # Orphans notice that their parent is gone on their own: wait for that state. (A zombie has
    # exited: it waits for whoever adopted it to reap it.)
    assert wait_for(lambda: all(exited(p) for p in descendants), timeout=15)
