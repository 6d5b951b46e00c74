"""Start the real server (`python -m export_server`) on a free loopback port, for tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class RunningServer:
    url: str
    process: subprocess.Popen[str]
    log: list[str]


@contextmanager
def running_server(args: Sequence[str] = (), timeout: float = 30.0) -> Iterator[RunningServer]:
    """A server started with `--port 0` plus `args`; stopped (and reaped) on exit."""
    process = subprocess.Popen(
        [sys.executable, "-m", "export_server", "--port", "0", *args],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert process.stderr is not None
    log: list[str] = []
    found = threading.Event()
    url: list[str] = []

    def read_stderr() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            log.append(line)
            match = re.search(r"listening on (http\S+)", line)
            if match and not found.is_set():
                url.append(match.group(1))
                found.set()
        found.set()

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
        yield RunningServer(url[0], process, log)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
