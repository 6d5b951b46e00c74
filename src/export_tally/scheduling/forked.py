"""Worker processes forked from the tool: how the local pool starts its workers on Linux.

A spawned worker is a fresh interpreter that imports the network layer again before it counts a
row (a fifth of a second of CPU here, more where bytecode is not cached, and on two cores that
is time the run waits for). A forked worker is a copy of the tool's process at the moment the
pool needs it, everything already imported, and counts at once.

What a copy must not share or repeat:
- the tool's connections: `transport.client` forgets its per-process clients in a child;
- the parent's ends of the other workers' sockets, closed in the child (`close_in_child`), or a
  worker would not see EOF when the tool closes its socket;
- the tool's signal handlers (SIGTERM's is reset in the child) and its exit: a forked worker
  ends with `os._exit`, whatever happens in it, so nothing of the tool's (atexit handlers,
  buffered output, the stack it forked from) runs twice.

Only on Linux: on macOS system libraries are not safe to use after a fork without exec (why
multiprocessing spawns there), and Windows has no fork; there, workers are spawned.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from export_tally.scheduling.worker import work

if TYPE_CHECKING:
    import socket
    from collections.abc import Iterable

    from export_tally.scheduling.worker import Runner

CAN_FORK = sys.platform.startswith("linux")
_LONGEST_NAP = 0.05  # wait(timeout) polls, as subprocess.Popen.wait does


class ForkedProcess:
    """A forked worker, with what the pool uses of a `subprocess.Popen`: `pid`, `returncode`,
    `poll`, `wait`, `terminate` and `kill`."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Its exit status (negative: the signal that ended it); TimeoutExpired after `timeout`."""
        if timeout is not None:
            deadline = time.monotonic() + timeout
            nap = 0.0005
            while self.poll() is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout)
                time.sleep(min(nap, left))
                nap = min(nap * 2, _LONGEST_NAP)
        if self.returncode is None:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, sig: signal.Signals) -> None:
        if self.poll() is None:  # never signal a pid that was reaped: it may be reused
            os.kill(self.pid, sig)


def fork_worker(
    theirs: socket.socket, close_in_child: Iterable[socket.socket], run: Runner
) -> ForkedProcess:
    """A worker process forked from this one, running with `run` the tasks that arrive on
    `theirs`; the child closes its copies of `close_in_child`."""
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child: never returns, nor unwinds into the tool's code above
        status = 1  # if anything below raises
        try:
            for sock in close_in_child:
                sock.close()
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the tool's handler
            status = work(theirs, parent, run)
        finally:
            os._exit(status)
    return ForkedProcess(pid)
