"""Tasks on a Dask cluster (the optional `dask` extra): workers fetch from the export server
themselves and send back only their small partial results; outage events come through the
scheduler as Dask events."""

from __future__ import annotations

import queue
from typing import TYPE_CHECKING, cast

from export_tally.errors import ServerUnreachableError, UsageError
from export_tally.scheduling import tasks
from export_tally.scheduling.executors import WAIT_SECONDS, Backend
from export_tally.transport.retry import OutageEvent

if TYPE_CHECKING:
    from collections.abc import Collection
    from concurrent.futures import Executor, Future

    from export_tally.scheduling.executors import OutageSink, Outcome, ProgressSink
    from export_tally.scheduling.tasks import RunOptions, Task, TaskResult

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
