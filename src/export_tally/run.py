"""Scheduling: every download of an export counted in worker processes, the partial tallies merged.

Parsing is CPU-bound, so downloads run in separate processes (threads would share one GIL; asyncio
would share one core). Each worker streams its own download over its own connection and returns a
small partial tally; nothing about the data is ever held whole in memory.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing.queues import Queue

import httpx

from export_tally.api import DownloadInfo, ExportApi
from export_tally.checkpoint import CheckpointStore
from export_tally.client import ClientOptions, make_client
from export_tally.errors import DownloadGoneError
from export_tally.fetch import DownloadResult, count_download
from export_tally.parse import BadRowMode
from export_tally.tally import Tally, merge_tallies

ProgressSink = Callable[[int], None]


@dataclass(frozen=True)
class RunOptions:
    """What a run needs besides the export id; picklable, as it travels to the workers."""

    client: ClientOptions
    jobs: int = 4
    on_bad_row: BadRowMode = "fail"


@dataclass(frozen=True)
class ExportResult:
    """The merged tally of an export and what each download contributed."""

    tally: Tally
    downloads: tuple[DownloadResult, ...]


def discover(api: ExportApi, export_id: str) -> list[DownloadInfo]:
    """The export's downloads with their metadata, in the server's order."""
    return [api.download_info(export_id, d) for d in api.download_ids(export_id)]


# --- worker side: runs in the pool's processes --------------------------------------------------

_progress: Queue[int] | None = None
_client: tuple[ClientOptions, httpx.Client] | None = None


def _watch_parent(parent_pid: int) -> None:
    """Exit when the parent dies (even by kill -9): a worker must never outlive the run."""
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    os._exit(1)


def _init_worker(progress: Queue[int], parent_pid: int) -> None:
    global _progress
    _progress = progress
    # Ctrl-C reaches the whole process group; the parent alone decides what happens next.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()


def _count_in_worker(options: RunOptions, info: DownloadInfo) -> DownloadResult:
    global _client
    if _client is None or _client[0] != options.client:
        _client = (options.client, make_client(options.client))
    progress = _progress
    report = progress.put if progress is not None else None
    return count_download(_client[1], options.client, info, options.on_bad_row, report)


# --- parent side --------------------------------------------------------------------------------


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Stop the workers now. ProcessPoolExecutor has no public way before Python 3.14."""
    processes = getattr(pool, "_processes", None) or {}
    for process in list(processes.values()):
        process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)


def _drain(progress: Queue[int], sink: ProgressSink | None) -> None:
    total = 0
    try:
        while True:
            total += progress.get_nowait()
    except queue.Empty:
        pass
    if sink is not None and total:
        sink(total)


def count_downloads(
    downloads: Sequence[DownloadInfo],
    options: RunOptions,
    on_progress: ProgressSink | None = None,
    checkpoints: CheckpointStore | None = None,
) -> ExportResult:
    """Count every download in a pool of `options.jobs` processes and merge the results.

    Downloads saved in `checkpoints` are not fetched again; each one finished now is saved there.
    The first error stops the run (workers are terminated) and is raised, except downloads that
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
    results.extend(_count_in_pool(todo, options, on_progress, checkpoints))
    order = {info.id: i for i, info in enumerate(downloads)}
    results.sort(key=lambda r: order[r.download_id])
    return ExportResult(merge_tallies(*(r.result.tally for r in results)), tuple(results))


def _count_in_pool(
    downloads: Sequence[DownloadInfo],
    options: RunOptions,
    on_progress: ProgressSink | None,
    checkpoints: CheckpointStore | None,
) -> list[DownloadResult]:
    if not downloads:
        return []
    by_id = {info.id: info for info in downloads}
    context = multiprocessing.get_context("spawn")
    progress: Queue[int] = context.Queue()
    pool = ProcessPoolExecutor(
        max_workers=max(1, min(options.jobs, len(downloads))),
        mp_context=context,
        initializer=_init_worker,
        initargs=(progress, os.getpid()),
    )
    results: list[DownloadResult] = []
    gone: list[str] = []
    try:
        pending: set[Future[DownloadResult]] = {
            pool.submit(_count_in_worker, options, info) for info in downloads
        }
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(progress, on_progress)
            for future in done:
                try:
                    result = future.result()
                except DownloadGoneError as exc:
                    gone.append(str(exc))
                    continue
                results.append(result)
                if checkpoints is not None:
                    checkpoints.save(by_id[result.download_id], result)
    except BaseException:
        _terminate(pool)
        progress.close()
        raise
    pool.shutdown(wait=True)
    _drain(progress, on_progress)
    progress.close()
    if gone:
        raise DownloadGoneError(
            f"{len(gone)} download(s) disappeared during the run: " + "; ".join(gone)
        )
    return results
