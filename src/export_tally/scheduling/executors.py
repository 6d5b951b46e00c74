"""Where tasks run: one interface, three implementations, each in a module of its own.

`in_process.InProcessBackend` runs tasks in the tool's own process (small exports),
`local_pool.LocalBackend` on worker processes of this machine, `dask_backend.DaskBackend` on a
Dask cluster. `submit` hands out an `Outcome` (anything with `result()`, which returns the task's
result or raises its error); `wait` blocks until at least one is done, passing on the rows counted
meanwhile and the outage events (the server became unreachable, or answers again), so the
scheduling loop in run.py is the same code for all three. Progress is live in the tool's process
and the local pool; on Dask it comes from finished tasks, and outage events come through the
scheduler as Dask events.

The caller imports only the implementation it chooses: running in-process starts nothing, the
local pool imports `subprocess`, Dask `distributed` (an optional dependency).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from export_tally.scheduling.tasks import RunOptions, Task, TaskResult
    from export_tally.transport.retry import OutageEvent

ProgressSink = Callable[[int], None]
OutageSink = Callable[["OutageEvent"], None]
# How long `wait` blocks at most, so that the caller's loop stays responsive.
WAIT_SECONDS = 0.2


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


class Pending:
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
