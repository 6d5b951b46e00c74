"""Where tasks run: a local process pool, or a Dask cluster. One interface, two implementations.

Both hand out `concurrent.futures` futures, so the scheduling loop in run.py is the same code for
both. A local pool also streams live progress (rows counted so far) and outage events (the server
became unreachable, or answered again) back through one queue; on Dask, progress comes from
finished tasks. Dask is an optional dependency, imported only when asked for.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import TYPE_CHECKING, Any

from export_tally.core.errors import ServerUnreachableError, UsageError
from export_tally.scheduling import tasks
from export_tally.transport.retry import OutageEvent

if TYPE_CHECKING:
    from multiprocessing.queues import Queue

    from export_tally.scheduling.tasks import RunOptions, Task, TaskResult

ProgressSink = Callable[[int], None]
OutageSink = Callable[[OutageEvent], None]


class Backend(ABC):
    """A place to run tasks; `slots` is how many run at once."""

    slots: int
    live_progress: bool

    @abstractmethod
    def submit(self, options: RunOptions, task: Task) -> Future[TaskResult]: ...

    def drain_progress(  # noqa: B027 (optional hook)
        self, sink: ProgressSink | None, on_outage: OutageSink | None = None
    ) -> None:
        """Pass on the progress and outage events workers reported since the last call (live
        backends only)."""

    @abstractmethod
    def close(self) -> None:
        """Release the workers after a successful run."""

    @abstractmethod
    def abort(self) -> None:
        """Stop everything now: an error, Ctrl-C or SIGTERM."""


# --- local processes ----------------------------------------------------------------------------


def _watch_parent(parent_pid: int) -> None:
    """Exit when the parent dies (even by kill -9): a worker must never outlive the run."""
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    os._exit(1)


def _init_worker(reports: Queue[int | OutageEvent], parent_pid: int) -> None:
    tasks.install_reports(reports.put, reports.put)
    # Ctrl-C reaches the whole process group; the parent alone decides what happens next.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()


class LocalBackend(Backend):
    """`jobs` worker processes on this machine (spawned: no state inherited from the parent)."""

    live_progress = True

    def __init__(self, jobs: int) -> None:
        self.slots = jobs
        context = multiprocessing.get_context("spawn")
        self._progress: Queue[int | OutageEvent] = context.Queue()
        self._leftover: list[int | OutageEvent] = []
        self._pool = ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=context,
            initializer=_init_worker,
            initargs=(self._progress, os.getpid()),
        )

    def submit(self, options: RunOptions, task: Task) -> Future[TaskResult]:
        return self._pool.submit(tasks.run_task, options, task)

    def drain_progress(
        self, sink: ProgressSink | None, on_outage: OutageSink | None = None
    ) -> None:
        reports, self._leftover = [*self._leftover, *self._received()], []
        for report in reports:
            if isinstance(report, OutageEvent) and on_outage is not None:
                on_outage(report)
        total = sum(report for report in reports if not isinstance(report, OutageEvent))
        if sink is not None and total:
            sink(total)

    def _received(self) -> list[int | OutageEvent]:
        reports = []
        try:
            while True:
                reports.append(self._progress.get_nowait())
        except (queue.Empty, OSError, ValueError):
            pass
        return reports

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        # The workers have exited, so all they reported is in the queue: keep it for the last drain.
        self._leftover = self._received()
        self._progress.close()

    def abort(self) -> None:
        # ProcessPoolExecutor has no public way to stop running workers before Python 3.14.
        processes: dict[Any, multiprocessing.Process] = (
            getattr(self._pool, "_processes", None) or {}
        )
        for process in list(processes.values()):
            process.terminate()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._progress.close()


# --- Dask ---------------------------------------------------------------------------------------


# Dask workers publish outage events under this topic; the client subscribes to it.
OUTAGE_TOPIC = "export-tally-outage"


def _run_on_dask(options: RunOptions, task: Task) -> TaskResult:
    """`tasks.run_task` on a Dask worker, whose outage events go to the client as Dask events."""
    from distributed import get_worker

    worker = get_worker()

    def publish(event: OutageEvent) -> None:
        worker.log_event(OUTAGE_TOPIC, [event.since, event.back])  # msgpack: a plain list

    tasks.install_reports(None, publish)
    return tasks.run_task(options, task)


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

    def submit(self, options: RunOptions, task: Task) -> Future[TaskResult]:
        return self._executor.submit(_run_on_dask, options, task)

    def drain_progress(
        self, sink: ProgressSink | None, on_outage: OutageSink | None = None
    ) -> None:
        while not self._outages.empty():
            event = self._outages.get()
            if on_outage is not None:
                on_outage(event)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._client.close()  # type: ignore[no-untyped-call]

    def abort(self) -> None:
        self._executor.shutdown(wait=False)  # cancels what has not finished
        self._client.close()  # type: ignore[no-untyped-call]
