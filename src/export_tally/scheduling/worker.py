"""A worker process of the local pool: runs the tasks the tool sends, one at a time.

On Linux a worker is forked from the tool (see forked.py); elsewhere it is spawned
(spawned_worker.py). Either way it runs `work`, serving its end of a Unix socket pair whose
other end the tool holds; wire.py has the messages. The task runner is given
(`tasks.run_task`), so that this loop does not import the network layer itself.

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
import threading
import time
from typing import TYPE_CHECKING, Any

from export_tally.scheduling import wire

if TYPE_CHECKING:
    from collections.abc import Callable

    from export_tally.transport.retry import OutageCallback, OutageEvent
    from export_tally.transport.shared_terms import ProgressCallback

    Runner = Callable[[Any, Any, ProgressCallback, OutageCallback], Any]
    """`tasks.run_task`: (options, task, report, on_outage) -> result."""

PARENT_POLL_SECONDS = 0.5
REPORT_SECONDS = 0.1


def _watch_parent(parent_pid: int) -> None:
    """Exit when the parent dies (even by kill -9): a worker must never outlive the run."""
    while os.getppid() == parent_pid:
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(1)


class _Progress:
    """Rows counted, sent to the tool at most every REPORT_SECONDS and before each answer: a
    message per block fed would cost the tool more CPU than its progress bar is worth."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.unsent = 0
        self.sent_at = -REPORT_SECONDS  # the first rows go at once: the run is under way

    def __call__(self, rows: int) -> None:
        self.unsent += rows
        now = time.monotonic()
        if now - self.sent_at >= REPORT_SECONDS:
            self.sent_at = now
            self.flush()

    def flush(self) -> None:
        if self.unsent:
            self.sock.sendall(wire.encode(wire.PROGRESS, wire.ROWS.pack(self.unsent)))
            self.unsent = 0


def serve(sock: socket.socket, run: Runner) -> None:
    """Run the tasks that arrive on `sock` with `run` until it reaches EOF."""
    report = _Progress(sock)

    def report_outage(event: OutageEvent) -> None:
        sock.sendall(wire.encode(wire.OUTAGE, pickle.dumps((event.since, event.back))))

    while (message := wire.receive(sock)) is not None:
        _, payload = message  # a TASK: the only kind the tool sends
        options, task = pickle.loads(payload)
        try:
            result = run(options, task, report, report_outage)
        except Exception as exc:
            report.flush()
            sock.sendall(wire.encode(wire.ERROR, wire.error_payload(exc)))
        else:
            report.flush()
            sock.sendall(wire.encode(wire.RESULT, pickle.dumps(result)))


def work(sock: socket.socket, parent_pid: int, run: Runner) -> int:
    """Serve the tool on `sock` until it closes it or dies; the exit status."""
    # Ctrl-C reaches the whole process group; the parent alone decides what happens next.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if os.getppid() != parent_pid:
        return 1  # the parent died before we started
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    # A broken pipe means the parent is gone: so are we.
    with sock, contextlib.suppress(BrokenPipeError, ConnectionResetError):
        serve(sock, run)
    return 0
