"""The unit of work a worker runs: a whole download, or one byte range of it.

`run_task` is what executors call, in a local worker process or on a Dask worker. A worker keeps
one HTTP client per process and reuses its connections across tasks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from export_tally.transport.api import DownloadInfo
from export_tally.transport.client import ClientOptions, client_for
from export_tally.transport.fetch import DownloadResult, count_download
from export_tally.transport.fetch_part import PartResult, PartTask, count_part

if TYPE_CHECKING:
    from export_tally.core.aggregation import Aggregator
    from export_tally.transport.driver import OutageCallback, ProgressCallback


@dataclass(frozen=True)
class RunOptions:
    """What every task needs besides its download; small and picklable."""

    client: ClientOptions
    aggregation: Aggregator[Any]


Task = DownloadInfo | PartTask
TaskResult = DownloadResult | PartResult

# Per worker process: installed by a local pool's initializer; on Dask, outages only.
_progress_report: ProgressCallback | None = None
_outage_report: OutageCallback | None = None


def install_reports(progress: ProgressCallback | None, outage: OutageCallback | None) -> None:
    """Make every task this process runs report its rows as it goes, and when the server
    becomes unreachable or answers again (see driver.drive)."""
    global _progress_report, _outage_report
    _progress_report = progress
    _outage_report = outage


def run_task(options: RunOptions, task: Task) -> TaskResult:
    """Count one task's bytes; raises the tool's errors (see fetch.count_download)."""
    client = client_for(options.client)
    reports = (_progress_report, _outage_report)
    if isinstance(task, PartTask):
        return count_part(client, options.client, task, options.aggregation, *reports)
    return count_download(client, options.client, task, options.aggregation, *reports)
