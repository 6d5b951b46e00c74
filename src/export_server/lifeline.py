"""Never outlive the parent: a process whose parent is gone exits instead of lingering as an orphan.

Two mechanisms, because each has a gap. Linux's parent-death signal is immediate but fires when the
parent *thread* that started the child exits, and exists only on Linux; polling `os.getppid()`
works everywhere and compares process ids, at the cost of a short delay.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

from export_server.exitcodes import ExitCode

POLL_SECONDS = 0.2
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """On Linux, have the kernel SIGKILL this process when its parent dies; exit at once if the
    parent (`parent_pid`) is already gone. Call it first thing in a child process."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # no prctl here: the getppid() polling still covers us
    # The parent may have died before the signal was armed.
    if os.getppid() != parent_pid:
        os._exit(ExitCode.OK)


def parent_is_alive(parent_pid: int) -> bool:
    """False once this process has been re-parented, i.e. its original parent has exited."""
    return os.getppid() == parent_pid


def watch_parent(on_orphaned: Callable[[], None], interval: float = POLL_SECONDS) -> None:
    """Call `on_orphaned` (from a daemon thread) once the current parent process has exited."""
    parent_pid = os.getppid()

    def watch() -> None:
        while parent_is_alive(parent_pid):
            time.sleep(interval)
        on_orphaned()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
