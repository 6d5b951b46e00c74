"""Tasks on worker processes of this machine: up to `jobs` of them, started as tasks need them.

Each worker talks to the tool over a Unix socket pair (messages in wire.py). On Linux it is
forked from the tool, which has imported everything a worker needs already (forked.py);
elsewhere it is spawned (spawned_worker.py). Plain processes, not multiprocessing, so the tool
starts exactly the processes it waits for (no resource tracker, no feeder threads) and reaps
every one of them before `close` or `abort` returns.
"""

from __future__ import annotations

import os
import pickle
import selectors
import socket
import subprocess
import sys
from collections import deque
from typing import TYPE_CHECKING

from export_tally.errors import WorkerDiedError
from export_tally.scheduling import wire
from export_tally.scheduling.executors import WAIT_SECONDS, Backend, Pending
from export_tally.scheduling.forked import CAN_FORK, ForkedProcess, fork_worker
from export_tally.scheduling.tasks import run_task
from export_tally.transport.retry import OutageEvent

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable

    from export_tally.scheduling.executors import OutageSink, Outcome, ProgressSink
    from export_tally.scheduling.tasks import RunOptions, Task

# How long a worker gets to exit after its socket is closed, before it is killed.
EXIT_GRACE_SECONDS = 5.0


class _RemoteTraceback(Exception):
    """The traceback of an error raised in a worker, shown by --debug as its cause."""


class _Worker:
    """One worker process, the socket to it, and the task it is running.

    Forked from the tool when `fork` (see forked.py), else spawned; `others` are the sockets to
    the workers started before, which a forked one must not keep open."""

    def __init__(self, fork: bool, others: Iterable[socket.socket]) -> None:
        ours, theirs = socket.socketpair()
        with theirs:
            self.process: subprocess.Popen[bytes] | ForkedProcess
            if fork:
                self.process = fork_worker(theirs, [ours, *others], run_task)
            else:
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "export_tally.scheduling.spawned_worker",
                     str(theirs.fileno()), str(os.getpid())],
                    pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                )  # fmt: skip
        self.sock = ours
        self.running: Pending | None = None

    def start(self, pending: Pending) -> None:
        self.running = pending
        payload = pickle.dumps((pending.options, pending.task))
        self.sock.sendall(wire.encode(wire.TASK, payload))

    def receive(self, sink: ProgressSink | None, on_outage: OutageSink | None) -> Pending | None:
        """Read one message: progress goes to `sink`, outage events to `on_outage`; returns the
        task it finished, if any."""
        message = wire.receive(self.sock)
        if message is None:
            status = self.process.wait()
            if self.running is None:
                return None  # it had nothing to do: the backend no longer uses it
            raise WorkerDiedError(
                f"a worker process exited (status {status}) while counting {_name(self.running)}"
            )
        kind, payload = message
        if kind == wire.PROGRESS:
            if sink is not None:
                sink(wire.ROWS.unpack(payload)[0])
            return None
        if kind == wire.OUTAGE:
            if on_outage is not None:
                on_outage(OutageEvent(*pickle.loads(payload)))
            return None
        finished, self.running = self.running, None
        assert finished is not None
        if kind == wire.RESULT:
            finished.finish(pickle.loads(payload))
        else:
            error, trace = pickle.loads(payload)
            error.__cause__ = _RemoteTraceback(f"\n\n(in the worker process)\n{trace}")
            finished.finish(error=error)
        return finished

    def end(self, kill: bool) -> None:
        """Ask the process to end: SIGTERM when `kill`, else EOF on its socket (it exits then)."""
        if kill and self.process.returncode is None:
            self.process.terminate()
        self.sock.close()

    def reap(self) -> None:
        """Wait for the process to exit, killing it after EXIT_GRACE_SECONDS."""
        try:
            self.process.wait(EXIT_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _name(pending: Pending) -> str:
    return pending.task.file.label


class LocalBackend(Backend):
    """Up to `jobs` worker processes on this machine, started as tasks need them: forked from
    the tool where that is safe (Linux, see forked.py), unless `fork` is False, else spawned.
    Every process is reaped before `close` or `abort` returns."""

    live_progress = True

    def __init__(self, jobs: int, fork: bool = CAN_FORK) -> None:
        self.slots = jobs
        self._fork = fork and CAN_FORK
        self._workers: list[_Worker] = []
        self._queue: deque[Pending] = deque()
        self._selector = selectors.DefaultSelector()

    def submit(self, options: RunOptions, task: Task) -> Outcome:
        pending = Pending(options, task)
        self._queue.append(pending)
        self._dispatch()
        return pending

    def _dispatch(self) -> None:
        """Give queued tasks to idle workers, starting workers while there are fewer than jobs."""
        while self._queue:
            idle = next((w for w in self._workers if w.running is None), None)
            if idle is None:
                if len(self._workers) >= self.slots:
                    return
                idle = _Worker(self._fork, (w.sock for w in self._workers))
                self._workers.append(idle)
                self._selector.register(idle.sock, selectors.EVENT_READ, idle)
            idle.start(self._queue.popleft())

    def wait(
        self,
        outcomes: Collection[Outcome],
        sink: ProgressSink | None,
        on_outage: OutageSink | None = None,
    ) -> Collection[Outcome]:
        done: list[Pending] = []
        for key, _ in self._selector.select(WAIT_SECONDS):
            worker: _Worker = key.data
            finished = worker.receive(sink, on_outage)
            if finished is not None:
                done.append(finished)
            elif worker.process.returncode is not None:  # an idle worker was killed: forget it
                self._selector.unregister(worker.sock)
                worker.sock.close()
                self._workers.remove(worker)
        self._dispatch()
        return done

    def close(self) -> None:
        self._stop(kill=False)

    def abort(self) -> None:
        self._queue.clear()
        self._stop(kill=True)

    def _stop(self, kill: bool) -> None:
        self._selector.close()
        for worker in self._workers:
            worker.end(kill)
        for worker in self._workers:
            worker.reap()
        self._workers.clear()
