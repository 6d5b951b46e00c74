"""CSV pieces -> NDJSON, in a small pool of processes of its own, beside the generator processes.

Making NDJSON is CPU-bound Python (`fhir_resources.observations`, about ten times the CSV's
bytes), so it runs in processes: the front's event loop only reads the CSV piece (from the cache,
or a fill), sends it (128 KiB), and passes on what comes back. Why a pool of its own rather than
new messages for the generator processes (docs/fhir.md): the conversion is a pure function of
a piece's bytes, with none of a generator's state (credit, cache files, fills); and a
`concurrent.futures` pool is a few lines beside a wire protocol that other work is reshaping.

The processes are spawned (the front runs threads; fork would copy their locks) when the first
piece needs one, die with the front (`lifeline.die_with_parent`), and ignore Ctrl+C, which the
front handles.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass

from export_server.fhir_gzip import Compressed, compress_piece
from export_server.fhir_resources import observations, rows_after
from export_server.lifeline import die_with_parent


@dataclass(frozen=True)
class PieceJob:
    """How to turn one piece of a download's CSV rows into Observations.

    `first_row` is the number of the piece's first row; `keep` the patient ids to keep (None:
    all); `since_key` (a `time_key`) leaves out rows at or before it (None: none).
    """

    prefix: str
    first_row: int
    keep: frozenset[bytes] | None = None
    since_key: bytes | None = None


def render(job: PieceJob, rows: bytes) -> tuple[bytes, int]:
    """The piece's Observation lines, and how many there are."""
    first_row = job.first_row
    if job.since_key is not None:
        rows, skipped = rows_after(rows, job.since_key)
        first_row += skipped
    return observations(rows, first_row, job.prefix, job.keep)


def _measure(job: PieceJob, rows: bytes) -> tuple[int, int]:
    lines, count = render(job, rows)
    return len(lines), count


def _render(job: PieceJob, rows: bytes) -> bytes:
    return render(job, rows)[0]


def _render_compressed(job: PieceJob, rows: bytes) -> Compressed:
    return compress_piece(render(job, rows)[0])


def _start_child(parent_pid: int) -> None:
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Converter:
    """Renders pieces on `processes` processes, started with the first piece; `close()` stops
    them."""

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self._executor: Executor | None = None

    def _pool(self) -> Executor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                self.processes, multiprocessing.get_context("spawn"),
                initializer=_start_child, initargs=(os.getpid(),),
            )  # fmt: skip
        return self._executor

    async def measure(self, job: PieceJob, rows: bytes) -> tuple[int, int]:
        """The length in bytes of the piece's NDJSON, and its number of Observations."""
        return await asyncio.get_running_loop().run_in_executor(self._pool(), _measure, job, rows)

    async def render(self, job: PieceJob, rows: bytes) -> bytes:
        """The piece's NDJSON."""
        return await asyncio.get_running_loop().run_in_executor(self._pool(), _render, job, rows)

    async def render_compressed(self, job: PieceJob, rows: bytes) -> Compressed:
        """The piece's NDJSON as raw deflate, ready to be laid into a gzip stream."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool(), _render_compressed, job, rows)

    async def close(self) -> None:
        if self._executor is not None:
            executor, self._executor = self._executor, None
            await asyncio.to_thread(executor.shutdown, True, cancel_futures=True)
