"""Start the real server (`python -m export_server`) on a free loopback port, for tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class RunningServer:
    """A server process, its URL and its stderr lines so far (still growing while it runs)."""

    url: str
    process: subprocess.Popen[str]
    log: list[str]
    _grew: threading.Condition = field(default_factory=threading.Condition)

    def wait_for_line(self, pattern: str, timeout: float = 300.0) -> str:
        """The first stderr line matching the regex `pattern`, waiting for it if need be.

        Raises RuntimeError if the server exits, or `timeout` seconds pass, before it appears.
        """
        deadline = time.monotonic() + timeout
        with self._grew:
            while True:
                for line in self.log:
                    if re.search(pattern, line):
                        return line
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"no line matching {pattern!r}:\n" + "".join(self.log))
                self._grew.wait(0.5)


StartServer = Callable[..., RunningServer]
"""What the `start_server` and `server_with` fixtures give: call it with the server's flags."""


def server_command(args: Sequence[str], cache_dir: Path | None = None) -> list[str]:
    """The command line of a server on `--port 0` with `args`, using `cache_dir` unless `args`
    choose a cache directory or no cache themselves."""
    command = [sys.executable, "-m", "export_server", "--port", "0", *args]
    if cache_dir is not None and not {"--cache-dir", "--no-cache"} & set(args):
        command += ["--cache-dir", str(cache_dir)]
    return command


class Reaper:
    """Servers told to stop (SIGTERM) whose exit is waited for later, all at once.

    A server takes a quarter of a second or more to shut down; a test that is done with it need
    not wait for that. `wait_all()` (at the end of the session) reaps them, killing any that
    take more than `timeout` seconds.
    """

    def __init__(self) -> None:
        self._stopping: list[subprocess.Popen[str]] = []

    def stop(self, process: subprocess.Popen[str]) -> None:
        process.terminate()
        self._stopping.append(process)

    def wait_all(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        for process in self._stopping:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._stopping.clear()


@contextmanager
def running_server(
    args: Sequence[str] = (),
    timeout: float = 30.0,
    cache_dir: Path | None = None,
    reaper: Reaper | None = None,
) -> Iterator[RunningServer]:
    """A server started with `--port 0` plus `args`; stopped on exit, and reaped (by `reaper`
    later, when given).

    `cache_dir` is its cache directory unless `args` choose one (or `--no-cache`); None leaves
    the server's default (the user's cache directory).
    """
    process = subprocess.Popen(
        server_command(args, cache_dir),
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert process.stderr is not None
    grew = threading.Condition()
    log: list[str] = []
    found = threading.Event()
    url: list[str] = []

    def read_stderr() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            with grew:
                log.append(line)
                grew.notify_all()
            match = re.search(r"listening on (http\S+)", line)
            if match and not found.is_set():
                url.append(match.group(1))
                found.set()
        found.set()
        with grew:
            grew.notify_all()

    threading.Thread(target=read_stderr, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not found.wait(0.1):
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("server did not start:\n" + "".join(log))
    if not url:
        process.wait()
        raise RuntimeError("server exited:\n" + "".join(log))
    try:
        yield RunningServer(url[0], process, log, grew)
    finally:
        own = reaper or Reaper()
        own.stop(process)
        if reaper is None:
            own.wait_all()
