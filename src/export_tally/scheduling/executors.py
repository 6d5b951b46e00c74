"""Where tasks run: in the tool's own process, in a local pool of worker processes, or on a Dask
cluster. One interface, three implementations.

`submit` hands out an `Outcome` (anything with `result()`, which returns the task's result or raises
its error); `wait` blocks until at least one is done, passing on the rows counted meanwhile and the
outage events (the server became unreachable, or answers again), so the scheduling loop in run.py
is the same code for all three. Progress is live in the tool's process and the local pool; on Dask
it comes from finished tasks, and outage events come through the scheduler as Dask events.

Each implementation imports what it needs when it is chosen: the local pool `subprocess`, Dask
`distributed` (an optional dependency); running in-process starts nothing and imports neither.
"""

from __future__ import annotations

import os
import queue
import selectors
import socket
import sys
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Protocol, cast

from export_tally.core.errors import ServerUnreachableError, TallyError, UsageError
from export_tally.scheduling import tasks, wire
from export_tally.transport.fetch_part import PartTask
from export_tally.transport.retry import OutageEvent

if TYPE_CHECKING:
    import subprocess
    from concurrent.futures import Executor, Future

    import httpx

    from export_tally.scheduling.tasks import RunOptions, Task, TaskResult

ProgressSink = Callable[[int], None]
OutageSink = Callable[[OutageEvent], None]
# How long `wait` blocks at most, so that the caller's loop stays responsive.
WAIT_SECONDS = 0.2
# How long a worker gets to exit after its socket is closed, before it is killed.
EXIT_GRACE_SECONDS = 5.0


class Outcome(Protocol):
    """A submitted task: `result()` returns its result or raises its error (once it is done)."""

    def result(self) -> TaskResult: ...


class Backend(ABC):
    """A place to run tasks; `slots` is how many run at once."""

    slots: int
    live_progress: bool

    @abstractmethod
    def submit(self, options: RunOptions, task: Task) -> Outcome: ...

    @abstractmethod
    def wait(
        self,
        outcomes: Collection[Outcome],
        sink: ProgressSink | None,
        on_outage: OutageSink | None = None,
    ) -> Collection[Outcome]:
        """Those of `outcomes` that are done, after at least one is or WAIT_SECONDS passed;
        the rows counted meanwhile go to `sink` (live backends only), outage events to
        `on_outage`."""

    @abstractmethod
    def close(self) -> None:
        """Release the workers after a successful run."""

    @abstractmethod
    def abort(self) -> None:
        """Stop everything now: an error, Ctrl-C or SIGTERM."""


class _Pending:
    """A task of the in-process or local backend: its inputs, then its result or error."""

    __slots__ = ("_error", "_result", "options", "task")

    def __init__(self, options: RunOptions, task: Task) -> None:
        self.options = options
        self.task = task
        self._result: TaskResult | None = None
        self._error: BaseException | None = None

    def finish(self, result: TaskResult | None = None, error: BaseException | None = None) -> None:
        self._result, self._error = result, error

    def result(self) -> TaskResult:
        if self._error is not None:
            raise self._error
        assert self._result is not None, "result() of a task that is not done"
        return self._result


# --- in the tool's own process ------------------------------------------------------------------


class InProcessBackend(Backend):
    """Tasks run one after another in the tool's own process, on its client: for small exports,
    where starting worker processes would cost more than the counting."""

    slots = 1
    live_progress = True

    def __init__(self, client: httpx.Client) -> None:
        self._client = client
        self._queue: deque[_Pending] = deque()

    def submit(self, options: RunOptions, task: Task) -> Outcome:
        pending = _Pending(options, task)
        self._queue.append(pending)
        return pending

    def wait(
        self,
        outcomes: Collection[Outcome],
        sink: ProgressSink | None,
        on_outage: OutageSink | None = None,
    ) -> Collection[Outcome]:
        """Run the next task; Ctrl-C and SIGTERM interrupt it where it is."""
        pending = self._queue.popleft()
        try:
            count = tasks.count_task
            pending.finish(count(self._client, pending.options, pending.task, sink, on_outage))
        except Exception as exc:
            pending.finish(error=exc)
        return [pending]

    def close(self) -> None:
        self._queue.clear()

    def abort(self) -> None:
        self._queue.clear()


# --- local worker processes ---------------------------------------------------------------------


class WorkerDiedError(TallyError):
    """A worker process exited in the middle of a task (killed, or crashed): a bug or an outside
    kill, not something the server did (exit status 1)."""


class _RemoteTraceback(Exception):
    """The traceback of an error raised in a worker, shown by --debug as its cause."""


class _Worker:
    """One worker process, the socket to it, and the task it is running."""

    def __init__(self) -> None:
        import subprocess

        ours, theirs = socket.socketpair()
        with theirs:
            self.process: subprocess.Popen[bytes] = subprocess.Popen(
                [sys.executable, "-m", "export_tally.scheduling.worker", str(theirs.fileno()),
                 str(os.getpid())],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            )  # fmt: skip
        self.sock = ours
        self.running: _Pending | None = None

    def start(self, pending: _Pending) -> None:
        import pickle

        self.running = pending
        payload = pickle.dumps((pending.options, pending.task))
        self.sock.sendall(wire.encode(wire.TASK, payload))

    def receive(self, sink: ProgressSink | None, on_outage: OutageSink | None) -> _Pending | None:
        """Read one message: progress goes to `sink`, outage events to `on_outage`; returns the
        task it finished, if any."""
        import pickle

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
        import subprocess

        try:
            self.process.wait(EXIT_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _name(pending: _Pending | None) -> str:
    if pending is None:
        return "nothing"
    task = pending.task
    info = task.info if isinstance(task, PartTask) else task
    return f"download {info.id}"


class LocalBackend(Backend):
    """Up to `jobs` worker processes on this machine, started as tasks need them (each a fresh
    interpreter: nothing is inherited from the parent). Every process is reaped before `close`
    or `abort` returns."""

    live_progress = True

    def __init__(self, jobs: int) -> None:
        self.slots = jobs
        self._workers: list[_Worker] = []
        self._queue: deque[_Pending] = deque()
        self._selector = selectors.DefaultSelector()

    def submit(self, options: RunOptions, task: Task) -> Outcome:
        pending = _Pending(options, task)
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
                idle = _Worker()
                self._workers.append(idle)
                self._selector.register(idle.sock, selectors.EVENT_READ, idle)
            idle.start(self._queue.popleft())

    def wait(
        self,
        outcomes: Collection[Outcome],
        sink: ProgressSink | None,
        on_outage: OutageSink | None = None,
    ) -> Collection[Outcome]:
        done: list[_Pending] = []
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


# --- Dask ---------------------------------------------------------------------------------------


# Dask workers publish outage events under this topic; the client subscribes to it.
OUTAGE_TOPIC = "export-tally-outage"


def _run_on_dask(options: RunOptions, task: Task) -> TaskResult:
    """`tasks.run_task` on a Dask worker, whose outage events go to the client as Dask events."""
    from distributed import get_worker

    worker = get_worker()

    def publish(event: OutageEvent) -> None:
        worker.log_event(OUTAGE_TOPIC, [event.since, event.back])  # msgpack: a plain list

    return tasks.run_task(options, task, on_outage=publish)


class DaskBackend(Backend):
    """Tasks on a Dask cluster: workers fetch from the export server themselves and send back
    only their small partial results, and outage events through the scheduler."""

    live_progress = False

    def __init__(self, address: str, connect_timeout: float = 5.0) -> None:
        try:
            from distributed import Client  # an optional dependency: the `dask` extra
        except ImportError:
            raise UsageError(
                "--scheduler needs Dask: install it with `uv sync --extra dask` "
                "(or pip install 'export-tally[dask]')"
            ) from None
        try:
            self._client = Client(address, timeout=connect_timeout, set_as_default=False)  # type: ignore[no-untyped-call]
        except (OSError, TimeoutError) as exc:
            raise ServerUnreachableError(
                f"cannot reach the Dask scheduler at {address}: {exc}"
            ) from exc
        workers = self._client.scheduler_info().get("workers", {})
        self.slots = max(1, sum(w.get("nthreads", 1) for w in workers.values()))
        self._executor: Executor = self._client.get_executor(pure=False)  # type: ignore[no-untyped-call]
        self._outages: queue.SimpleQueue[OutageEvent] = queue.SimpleQueue()
        self._client.subscribe_topic(OUTAGE_TOPIC, self._heard)  # type: ignore[no-untyped-call]

    def _heard(self, event: tuple[float, list[float | None]]) -> None:
        """A worker's outage event (called on the client's own thread)."""
        since, back = event[1]
        assert since is not None
        self._outages.put(OutageEvent(since, back))

    def submit(self, options: RunOptions, task: Task) -> Outcome:
        return self._executor.submit(_run_on_dask, options, task)

    def wait(
        self,
        outcomes: Collection[Outcome],
        sink: ProgressSink | None,
        on_outage: OutageSink | None = None,
    ) -> Collection[Outcome]:
        from concurrent.futures import FIRST_COMPLETED, wait

        futures = cast("Collection[Future[TaskResult]]", outcomes)  # what submit handed out
        done, _ = wait(futures, timeout=WAIT_SECONDS, return_when=FIRST_COMPLETED)
        while not self._outages.empty():
            event = self._outages.get()
            if on_outage is not None:
                on_outage(event)
        return done

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._client.close()  # type: ignore[no-untyped-call]

    def abort(self) -> None:
        self._executor.shutdown(wait=False)  # cancels what has not finished
        self._client.close()  # type: ignore[no-untyped-call]
