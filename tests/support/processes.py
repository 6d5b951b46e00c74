"""For tests that run processes: waiting on an observable state, and the default address."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from typing import Any


def wait_for(predicate: Callable[[], object], timeout: float = 60.0) -> bool:
    """Poll `predicate` until it is true (or `timeout` seconds pass): waiting for a state."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def wait_while_running(
    process: subprocess.Popen[Any], predicate: Callable[[], object], timeout: float = 300.0
) -> None:
    """Wait until `predicate` is true while `process` still runs, to stop it partway; fails the
    test when the process ends first, or when `timeout` seconds pass (the process killed)."""
    if not wait_for(lambda: process.poll() is not None or predicate(), timeout):
        process.kill()
        process.wait()
        raise AssertionError(f"what was waited for did not happen in {timeout:g} s")
    assert process.poll() is None, "the run ended before it could be stopped partway"


def default_port_is_free() -> bool:
    """Whether nothing listens on the tool's default address (the bundled server would start)."""
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", 8000)) != 0
