"""A worker process of the local pool: counts the tasks the tool sends, one at a time.

On Linux a worker is forked from the tool (see forked.py) and runs `serve_forked`; elsewhere it
is spawned as `python -m export_tally.scheduling.worker FD PARENT_PID`, where FD is this
process's end of a Unix socket pair whose other end the tool holds. wire.py has the messages.

Plain processes, not `multiprocessing`: the tool starts exactly the processes it waits for, and
nothing else (no resource tracker, no feeder threads), so when a run ends it has reaped every
process it started. A worker exits on EOF of its socket (the tool closed
it, or died), and when its parent is gone (polled: the tool may die by `kill -9` while the worker
is busy counting).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import socket
import sys
import threading
import time
from typing import TYPE_CHECKING, NoReturn

from export_tally.scheduling import wire
from export_tally.scheduling.tasks import run_task

if TYPE_CHECKING:
    from export_tally.transport.retry import OutageEvent

PARENT_POLL_SECONDS = 0.5


def _watch_parent(parent_pid: int) -> None:
    """Exit when the parent dies (even by kill -9): a worker must never outlive the run."""
    while os.getppid() == parent_pid:
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(1)


def serve(sock: socket.socket) -> None:
    """Run the tasks that arrive on `sock` until it reaches EOF."""

    def report(rows: int) -> None:
        sock.sendall(wire.encode(wire.PROGRESS, wire.ROWS.pack(rows)))

    def report_outage(event: OutageEvent) -> None:
        sock.sendall(wire.encode(wire.OUTAGE, pickle.dumps((event.since, event.back))))

    while (message := wire.receive(sock)) is not None:
        kind, payload = message
        if kind != wire.TASK:
            return
        options, task = pickle.loads(payload)
        try:
            result = run_task(options, task, report, report_outage)
        except Exception as exc:
            sock.sendall(wire.encode(wire.ERROR, wire.error_payload(exc)))
        else:
            sock.sendall(wire.encode(wire.RESULT, pickle.dumps(result)))


def work(sock: socket.socket, parent_pid: int) -> int:
    """Serve the tool on `sock` until it closes it or dies; the exit status."""
    # Ctrl-C reaches the whole process group; the parent alone decides what happens next.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if os.getppid() != parent_pid:
        return 1  # the parent died before we started
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    # A broken pipe means the parent is gone: so are we.
    with sock, contextlib.suppress(BrokenPipeError, ConnectionResetError):
        serve(sock)
    return 0


def serve_forked(sock: socket.socket, parent_pid: int) -> NoReturn:
    """A forked worker's whole life (see forked.py): it ends here, with os._exit."""
    status = 1
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the tool's handler
        status = work(sock, parent_pid)
    finally:
        os._exit(status)


def main(argv: list[str]) -> int:
    fd, parent_pid = int(argv[0]), int(argv[1])
    return work(socket.socket(fileno=fd), parent_pid)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
