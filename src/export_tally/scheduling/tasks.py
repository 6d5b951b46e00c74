"""The unit of work a worker runs: a whole file, or one byte range of it; and what it gave.

`run_task` is what a worker process or a Dask worker calls: it keeps one HTTP client per process
and reuses its connections across tasks. `count_task` is the same work on a client the caller
owns (the tool's own process, for small exports). `count_task` is the one place that tells a
whole file from a part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from export_tally.transport.client import ClientOptions, client_for
from export_tally.transport.fetch import fetch_whole
from export_tally.transport.fetch_range import fetch_range

if TYPE_CHECKING:
    import httpx

    from export_tally.core.aggregation import Aggregator
    from export_tally.core.csv.split import ByteRange
    from export_tally.transport.fetch_range import Splittable
    from export_tally.transport.retry import OutageCallback
    from export_tally.transport.shared_terms import FetchOutcome, ProgressCallback, RemoteFile


@dataclass(frozen=True)
class RunOptions:
    """What every task needs besides its file; small and picklable."""

    client: ClientOptions
    aggregation: Aggregator[Any]


@dataclass(frozen=True)
class Part:
    """Part `index` of `count` of a split file: the records in `byte_range` of its body."""

    splittable: Splittable
    byte_range: ByteRange
    index: int
    count: int


@dataclass(frozen=True)
class Task:
    """A file to count whole, or one part of it."""

    file: RemoteFile
    part: Part | None = None

    @property
    def is_part(self) -> bool:
        return self.part is not None

    @property
    def label(self) -> str:
        """How messages name this task: `download d1`, `download d1 part 2/4`."""
        if self.part is None:
            return self.file.label
        return f"{self.file.label} part {self.part.index + 1}/{self.part.count}"

    @property
    def part_key(self) -> tuple[Any, ...]:
        """What names a part besides its file, for checkpoint keys: () for a whole file."""
        part = self.part
        if part is None:
            return ()
        splittable, byte_range = part.splittable, part.byte_range
        return ("part", splittable.size, splittable.etag, byte_range.start, byte_range.end)


@dataclass(frozen=True)
class TaskResult:
    """What a task gave: the fetch's outcome; `restored` when taken from a checkpoint instead."""

    task: Task
    outcome: FetchOutcome
    restored: bool = False


def run_task(
    options: RunOptions,
    task: Task,
    report: ProgressCallback | None = None,
    on_outage: OutageCallback | None = None,
) -> TaskResult:
    """Count one task's bytes on this process's client; rows go to `report` as they are counted,
    and news that the server became unreachable or answers again to `on_outage`.

    Raises the tool's errors (see fetch.fetch_whole).
    """
    return count_task(client_for(options.client), options, task, report, on_outage)


def count_task(
    client: httpx.Client,
    options: RunOptions,
    task: Task,
    report: ProgressCallback | None = None,
    on_outage: OutageCallback | None = None,
) -> TaskResult:
    """Count one task's bytes on `client`; raises the tool's errors (see fetch.fetch_whole)."""
    part, aggregation = task.part, options.aggregation
    if part is None:
        outcome = fetch_whole(client, options.client, task.file, aggregation, report, on_outage)
    else:
        outcome = fetch_range(
            client, options.client, task.file, part.splittable, part.byte_range, task.label,
            aggregation, report, on_outage,
        )  # fmt: skip
    return TaskResult(task, outcome)
