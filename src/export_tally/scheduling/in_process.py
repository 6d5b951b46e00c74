"""Tasks in the tool's own process, one after another, on its client: for small exports, where
starting worker processes would cost more than the counting."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from export_tally.scheduling import tasks
from export_tally.scheduling.executors import Backend, Pending

if TYPE_CHECKING:
    from collections.abc import Collection

    import httpx

    from export_tally.scheduling.executors import OutageSink, Outcome, ProgressSink
    from export_tally.scheduling.tasks import RunOptions, Task


class InProcessBackend(Backend):
    """Runs each task when `wait` is called, on `client`, which stays the caller's to close."""

    slots = 1
    live_progress = True

    def __init__(self, client: httpx.Client) -> None:
        self._client = client
        self._queue: deque[Pending] = deque()

    def submit(self, options: RunOptions, task: Task) -> Outcome:
        pending = Pending(options, task)
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
