"""Scheduling: every file of an export counted by a backend's workers, the results merged.

Parsing is CPU-bound, so files run in separate processes (threads would share one GIL; asyncio
would share one core), or on a Dask cluster; a small export is counted in the tool's own process
(see executors.py). Each task streams its own bytes over its own connection and returns a small
partial result; nothing about the data is ever held whole.

When there are more workers than files and the server allows it, files are split into byte
ranges (core/csv/split.py). A file any of whose parts saw a quote is counted again whole, and the
parts' row counts must add up to the declared rows, as a whole file's must (results.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from export_tally.core.csv.split import part_ranges
from export_tally.errors import DownloadGoneError
from export_tally.scheduling.results import (
    DownloadResult,
    check_declared_rows,
    needs_whole_count,
    reassemble,
    whole_result,
)
from export_tally.scheduling.tasks import Part, Task, TaskResult
from export_tally.transport.shared_terms import FetchOutcome

if TYPE_CHECKING:
    from export_tally.scheduling.checkpoint import CheckpointStore
    from export_tally.scheduling.executors import Backend, OutageSink, Outcome, ProgressSink
    from export_tally.scheduling.tasks import RunOptions
    from export_tally.transport.fetch_range import Splittable
    from export_tally.transport.shared_terms import RemoteFile

Probe = Callable[["RemoteFile"], "Splittable | None"]


@dataclass(frozen=True)
class ExportResult:
    """The merged tally of an export and what each file contributed."""

    tally: Any  # the Aggregator's kind of aggregate
    downloads: tuple[DownloadResult, ...]


@dataclass(frozen=True)
class SplitPolicy:
    """Split files into parts of at least `min_part_bytes` when workers outnumber them."""

    probe: Probe
    min_part_bytes: int


def plan_tasks(
    files: Sequence[RemoteFile],
    slots: int,
    split: SplitPolicy | None,
    planned_for: int | None = None,
) -> list[Task]:
    """Whole files, or parts of them when there are more worker slots than files.

    The parts are planned as for `planned_for` files (default: these), the whole export, so that
    a rerun which skips the files saved cuts the others where the first run did, and finds their
    saved parts.
    """
    among = planned_for or len(files)
    if split is None or slots <= among or not files:
        # Largest first: the last task to finish is then a small one, so no worker idles long
        # while another counts a big file at the end.
        return [Task(file) for file in sorted(files, key=_largeness, reverse=True)]
    parts_each = math.ceil(slots / among)
    planned: list[Task] = []
    for file in files:
        splittable = split.probe(file) if file.rows else None
        if splittable is None:
            planned.append(Task(file))
            continue
        ranges = part_ranges(
            len(splittable.header), splittable.size, parts_each, split.min_part_bytes
        )
        if len(ranges) < 2:
            planned.append(Task(file))
            continue
        planned.extend(
            Task(file, Part(splittable, r, i, len(ranges))) for i, r in enumerate(ranges)
        )
    return planned


def _largeness(file: RemoteFile) -> int:
    """How large a file is said to be: its declared rows, else nothing known (last)."""
    return -1 if file.rows is None else file.rows


class _Scheduler:
    """Submits tasks, collects results, reassembles split files, records checkpoints."""

    def __init__(
        self,
        backend: Backend,
        options: RunOptions,
        on_progress: ProgressSink | None,
        checkpoints: CheckpointStore | None,
        on_outage: OutageSink | None = None,
    ) -> None:
        self.backend = backend
        self.options = options
        self.on_progress = on_progress
        self.on_outage = on_outage
        self.checkpoints = checkpoints
        self.pending: dict[Outcome, Task] = {}
        self.parts: dict[str, list[TaskResult]] = {}  # file id -> its parts done so far
        self.miscounted: dict[str, FetchOutcome] = {}  # file id -> a count thrown away
        self.results: list[DownloadResult] = []
        self.gone: list[str] = []

    def saved(self, task: Task) -> TaskResult | None:
        return self.checkpoints.lookup(task) if self.checkpoints is not None else None

    def submit(self, task: Task) -> None:
        self.pending[self.backend.submit(self.options, task)] = task

    def run(self) -> None:
        while self.pending:
            for outcome in self.backend.wait(list(self.pending), self.on_progress, self.on_outage):
                self.pending.pop(outcome)
                try:
                    done = outcome.result()
                except DownloadGoneError as exc:
                    self.gone.append(str(exc))
                    continue
                self.task_done(done)

    def count_rows(self, rows: int) -> None:
        """The one place progress is counted: rows a task's result adds (or takes back)."""
        if self.on_progress is not None and rows:
            self.on_progress(rows)

    def task_done(self, done: TaskResult) -> None:
        """A task's result, fetched now or restored from a checkpoint."""
        # A live backend reported the rows while they were counted; the others, and checkpoints,
        # only now.
        if done.restored or not self.backend.live_progress:
            self.count_rows(done.outcome.result.rows)
        if done.task.part is None:
            self.whole_done(done)
        else:
            self.part_done(done, done.task.part.count)

    def whole_done(self, done: TaskResult) -> None:
        file = done.task.file
        if done.restored:  # checked against the declared rows when it was saved, and looked up
            self.results.append(whole_result(done))
            return
        miscounted = self.miscounted.pop(file.id, None)
        if not check_declared_rows(done, miscounted):
            # Counted again from scratch, once: the rows are taken back meanwhile.
            self.miscounted[file.id] = done.outcome
            self.count_rows(-done.outcome.result.rows)
            self.submit(Task(file))
            return
        self.results.append(whole_result(done, miscounted))
        self.record(done)

    def record(self, done: TaskResult) -> None:
        if self.checkpoints is not None:
            self.checkpoints.record(done)

    def part_done(self, done: TaskResult, count: int) -> None:
        file = done.task.file
        collected = self.parts.setdefault(file.id, [])
        collected.append(done)
        if len(collected) < count:
            if not done.restored:
                self.record(done)
            return
        del self.parts[file.id]
        if needs_whole_count(collected):
            self.count_rows(-sum(p.outcome.result.rows for p in collected))
            self.submit(Task(file))
            return
        result = reassemble(collected, self.options.aggregation)
        self.results.append(result)
        # Saved as the whole file it now is (its parts' entries are no longer needed).
        self.record(TaskResult(Task(file), FetchOutcome(result.result, result.bytes, 0)))


def count_downloads(
    files: Sequence[RemoteFile],
    options: RunOptions,
    backend: Backend,
    on_progress: ProgressSink | None = None,
    checkpoints: CheckpointStore | None = None,
    split: SplitPolicy | None = None,
    on_outage: OutageSink | None = None,
) -> ExportResult:
    """Count every file on `backend`'s workers (closed when done) and merge the results.

    `on_progress` hears rows as workers count them; `on_outage`, each worker's news that the
    server became unreachable or answers again (several workers may report the same outage).

    Files (and parts) saved in `checkpoints` are not fetched again; each one finished now is
    recorded there.
    The first error stops the run (workers are stopped) and is raised, except files that
    disappeared (404): the others finish first, then one DownloadGoneError names them all.
    """
    scheduler = _Scheduler(backend, options, on_progress, checkpoints, on_outage)
    todo: list[RemoteFile] = []
    for file in files:
        saved = scheduler.saved(Task(file))
        if saved is None:
            todo.append(file)
        else:
            scheduler.task_done(saved)
    try:
        for task in plan_tasks(todo, backend.slots, split, len(files)):
            # A whole file's checkpoint was looked up above; a part's is looked up now.
            saved = scheduler.saved(task) if task.is_part else None
            if saved is None:
                scheduler.submit(task)
            else:
                scheduler.task_done(saved)
        scheduler.run()
    except BaseException:
        backend.abort()
        raise
    backend.close()
    if scheduler.gone:
        raise DownloadGoneError(
            f"{len(scheduler.gone)} download(s) disappeared during the run: "
            + "; ".join(scheduler.gone)
        )
    order = {file.id: i for i, file in enumerate(files)}
    results = sorted(scheduler.results, key=lambda r: order[r.download_id])
    merged = options.aggregation.merge([r.result.aggregate for r in results])
    return ExportResult(merged, tuple(results))
