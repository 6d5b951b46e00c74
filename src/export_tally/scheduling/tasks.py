"""The unit of work a worker runs: a whole download, or one byte range of it.

`run_task` is what a worker process or a Dask worker calls: it keeps one HTTP client per process
and reuses its connections across tasks. `count_task` is the same work on a client the caller
owns (the tool's own process, for small exports).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from export_tally.transport.api import DownloadInfo
from export_tally.transport.client import ClientOptions, client_for
from export_tally.transport.fetch import DownloadResult, count_download
from export_tally.transport.fetch_part import PartResult, PartTask, count_part

if TYPE_CHECKING:
    import httpx

    from export_tally.core.aggregation import Aggregator
    from export_tally.transport.driver import OutageCallback, ProgressCallback


@dataclass(frozen=True)
class RunOptions:
    """What every task needs besides its download; small and picklable."""

    client: ClientOptions
    aggregation: Aggregator[Any]


Task = DownloadInfo | PartTask
TaskResult = DownloadResult | PartResult


def run_task(
    options: RunOptions,
    task: Task,
    report: ProgressCallback | None = None,
    on_outage: OutageCallback | None = None,
) -> TaskResult:
    """Count one task's bytes on this process's client; rows go to `report` as they are counted,
    and news that the server became unreachable or answers again to `on_outage`.

    Raises the tool's errors (see fetch.count_download).
    """
    return count_task(client_for(options.client), options, task, report, on_outage)


def count_task(
    client: httpx.Client,
    options: RunOptions,
    task: Task,
    report: ProgressCallback | None = None,
    on_outage: OutageCallback | None = None,
) -> TaskResult:
    """Count one task's bytes on `client`; raises the tool's errors (see fetch.count_download)."""
    if isinstance(task, PartTask):
        return count_part(client, options.client, task, options.aggregation, report, on_outage)
    return count_download(client, options.client, task, options.aggregation, report, on_outage)
