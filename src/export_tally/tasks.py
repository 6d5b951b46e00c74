"""The unit of work a worker runs: a whole download, or one byte range of it.

`run_task` is what executors call, in a local worker process or on a Dask worker. A worker keeps
one HTTP client per process and reuses its connections across tasks.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import httpx

from export_tally.aggregation import Aggregation
from export_tally.api import DownloadInfo
from export_tally.client import ClientOptions, make_client
from export_tally.fetch import DownloadResult, ProgressCallback, count_download
from export_tally.fetch_part import PartResult, PartTask, count_part


@dataclass(frozen=True)
class RunOptions:
    """What every task needs besides its download; small and picklable."""

    client: ClientOptions
    aggregation: Aggregation = field(default_factory=Aggregation)


Task = DownloadInfo | PartTask
TaskResult = DownloadResult | PartResult

# Per worker process: set by a local pool's initializer; absent on Dask workers.
progress_report: ProgressCallback | None = None
_clients: dict[ClientOptions, httpx.Client] = {}
_lock = threading.Lock()  # Dask runs tasks in threads: build each client once


def _client_for(options: ClientOptions) -> httpx.Client:
    with _lock:
        client = _clients.get(options)
        if client is None:
            client = _clients[options] = make_client(options)
        return client


def run_task(options: RunOptions, task: Task) -> TaskResult:
    """Count one task's bytes; raises the tool's errors (see fetch.count_download)."""
    client = _client_for(options.client)
    if isinstance(task, PartTask):
        return count_part(client, options.client, task, options.aggregation, progress_report)
    return count_download(client, options.client, task, options.aggregation, progress_report)
