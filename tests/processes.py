"""For tests that run processes: waiting on an observable state, and the default address."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


def wait_for(predicate: Callable[[], object], timeout: float = 60.0) -> bool:
    """Poll `predicate` until it is true (or `timeout` seconds pass): waiting for a state."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def default_port_is_free() -> bool:
    """Whether nothing listens on the tool's default address (the bundled server would start)."""
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", 8000)) != 0
