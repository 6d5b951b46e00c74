"""Scheduling: every download of an export counted by a backend's workers, the results merged.

Parsing is CPU-bound, so downloads run in separate processes (threads would share one GIL; asyncio
would share one core), or on a Dask cluster; a small export is counted in the tool's own process
(see executors.py). Each task streams its own bytes over its own connection and returns a small
partial result; nothing about the data is ever held whole.

When there are more workers than downloads and the server allows it, downloads are split into
byte ranges (split.py). A download any of whose parts saw a quote is counted again whole, and the
parts' row counts must add up to the metadata's, as a whole download's must.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from export_tally.core.aggregation import BodyResult
from export_tally.core.csv.split import part_ranges
from export_tally.errors import DownloadGoneError, ProtocolError
from export_tally.transport.api import DownloadInfo, ExportApi
from export_tally.transport.fetch import DownloadResult
from export_tally.transport.fetch_part import PartResult, PartTask, Splittable

if TYPE_CHECKING:
    from export_tally.scheduling.checkpoint import CheckpointStore
    from export_tally.scheduling.executors import Backend, OutageSink, Outcome, ProgressSink
    from export_tally.scheduling.tasks import RunOptions, Task

Probe = Callable[[DownloadInfo], Splittable | None]


@dataclass(frozen=True)
class ExportResult:
    """The merged tally of an export and what each download contributed."""

    tally: Any  # the Aggregator's kind of aggregate
    downloads: tuple[DownloadResult, ...]


@dataclass(frozen=True)
class SplitPolicy:
    """Split downloads into parts of at least `min_part_bytes` when workers outnumber them."""

    probe: Probe
    min_part_bytes: int


def discover(api: ExportApi, export_id: str) -> list[DownloadInfo]:
    """The export's downloads with their metadata, in the server's order."""
    return [api.download_info(export_id, d) for d in api.download_ids(export_id)]


def plan_tasks(
    downloads: Sequence[DownloadInfo],
    slots: int,
    split: SplitPolicy | None,
    planned_for: int | None = None,
) -> list[Task]:
    """Whole downloads, or parts of them when there are more worker slots than downloads.

    The parts are planned as for `planned_for` downloads (default: these), the whole export, so
    that a rerun which skips the downloads saved cuts the others where the first run did, and
    finds their saved parts.
    """
    among = planned_for or len(downloads)
    if split is None or slots <= among or not downloads:
        # Largest first: the last task to finish is then a small one, so no worker idles long
        # while another counts a big download at the end.
        return sorted(downloads, key=attrgetter("rows"), reverse=True)
    parts_each = math.ceil(slots / among)
    planned: list[Task] = []
    for info in downloads:
        splittable = split.probe(info) if info.rows else None
        if splittable is None:
            planned.append(info)
            continue
        ranges = part_ranges(
            len(splittable.header), splittable.size, parts_each, split.min_part_bytes
        )
        if len(ranges) < 2:
            planned.append(info)
            continue
        planned.extend(PartTask(info, splittable, r, i, len(ranges)) for i, r in enumerate(ranges))
    return planned


class _Scheduler:
    """Submits tasks, collects results, reassembles split downloads, saves checkpoints."""

    def __init__(
        self,
        backend: Backend,
        options: RunOptions,
        infos: dict[str, DownloadInfo],
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
        self.infos = infos  # the downloads to count, by id: a checkpoint is saved with its info
        self.parts: dict[str, list[PartResult]] = {}
        self.results: list[DownloadResult] = []
        self.gone: list[str] = []

    def submit(self, task: Task) -> None:
        self.pending[self.backend.submit(self.options, task)] = task

    def restore_part(self, part: PartResult) -> None:
        """A part taken from a checkpoint: reassembled with the others as if just counted."""
        if self.backend.live_progress:
            self.advance(part.result.rows)  # otherwise part_done reports it
        self.part_done(part)

    def advance(self, rows: int) -> None:
        if self.on_progress is not None and rows:
            self.on_progress(rows)

    def run(self) -> None:
        while self.pending:
            for outcome in self.backend.wait(list(self.pending), self.on_progress, self.on_outage):
                self.pending.pop(outcome)
                try:
                    result = outcome.result()
                except DownloadGoneError as exc:
                    self.gone.append(str(exc))
                    continue
                if isinstance(result, PartResult):
                    self.part_done(result)
                else:
                    self.download_done(result)

    def part_done(self, part: PartResult) -> None:
        if not self.backend.live_progress:
            self.advance(part.result.rows)
        info = part.task.info
        collected = self.parts.setdefault(info.id, [])
        collected.append(part)
        if len(collected) < part.task.count:
            if self.checkpoints is not None and not part.restored:
                self.checkpoints.save_part(part)
            return
        del self.parts[info.id]
        if any(p.saw_quote for p in collected):
            # A quoted field may hide a newline that is not a record boundary: count it whole.
            self.advance(-sum(p.result.rows for p in collected))
            self.submit(info)
            return
        rows = sum(p.result.rows for p in collected)
        if rows != info.rows:
            raise ProtocolError(
                f"download {info.id}: its parts counted {rows} rows but the metadata declares {info.rows}"
            )
        merged = BodyResult(
            self.options.aggregation.merge([p.result.aggregate for p in collected]),
            rows,
            sum(p.result.skipped for p in collected),
            (),  # part-relative line numbers would mislead
        )
        size = part.task.splittable.size
        attempts = sum(p.attempts for p in collected)
        restored = sum(p.restored for p in collected)
        self.download_done(
            DownloadResult(
                info.id, merged, size, attempts, parts=len(collected), restored_parts=restored
            )
        )

    def download_done(self, result: DownloadResult) -> None:
        if not self.backend.live_progress and result.parts == 1:
            self.advance(result.result.rows)
        self.results.append(result)
        if self.checkpoints is not None:
            self.checkpoints.save(self.infos[result.download_id], result)


def count_downloads(
    downloads: Sequence[DownloadInfo],
    options: RunOptions,
    backend: Backend,
    on_progress: ProgressSink | None = None,
    checkpoints: CheckpointStore | None = None,
    split: SplitPolicy | None = None,
    on_outage: OutageSink | None = None,
) -> ExportResult:
    """Count every download on `backend`'s workers (closed when done) and merge the results.

    `on_progress` hears rows as workers count them; `on_outage`, each worker's news that the
    server became unreachable or answers again (several workers may report the same outage).

    Downloads (and parts) saved in `checkpoints` are not fetched again; each one finished now is
    saved there.
    The first error stops the run (workers are stopped) and is raised, except downloads that
    disappeared (404): the others finish first, then one DownloadGoneError names them all.
    """
    results: list[DownloadResult] = []
    todo: list[DownloadInfo] = []
    for info in downloads:
        saved = checkpoints.load(info) if checkpoints is not None else None
        if saved is None:
            todo.append(info)
        else:
            results.append(saved)
            if on_progress is not None:
                on_progress(saved.result.rows)
    infos = {info.id: info for info in todo}
    scheduler = _Scheduler(backend, options, infos, on_progress, checkpoints, on_outage)
    try:
        for task in plan_tasks(todo, backend.slots, split, len(downloads)):
            saved_part = None
            if checkpoints is not None and isinstance(task, PartTask):
                saved_part = checkpoints.load_part(task)
            if saved_part is None:
                scheduler.submit(task)
            else:
                scheduler.restore_part(saved_part)
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
    results.extend(scheduler.results)
    order = {info.id: i for i, info in enumerate(downloads)}
    results.sort(key=lambda r: order[r.download_id])
    merged = options.aggregation.merge([r.result.aggregate for r in results])
    return ExportResult(merged, tuple(results))
