"""The pool of generator processes, as the front process drives it: start, schedule, stream, stop.

Generation is CPU-bound Python, so it runs in processes (one GIL each), while the front's event
loop only moves bytes. Every job goes to the process with the fewest jobs at that moment, so two
concurrent downloads always land on two different processes when there are two; that is the
point of scheduling here rather than letting processes race for a shared accept socket.

The processes start when the first job needs one, all of them at once: a server whose cache holds
every body asked for (the bundled server on a warm cache) never starts one, and its start-up does
not share the cores with interpreters that would import the generator for nothing.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import subprocess
import sys
from collections import deque
from pathlib import Path
from typing import Any, Generic, TypeVar

from export_server import generator_protocol as protocol
from export_server.dataset import Download
from export_server.errors import DiskFullError, GenerationError

log = logging.getLogger("export_server")

# Messages carry whole chunks (hundreds of kilobytes); a larger limit avoids pausing the socket
# between the reads of one chunk.
_STREAM_LIMIT = 1 << 22
_RESPAWN_DELAY = 1.0
_job_ids = itertools.count(1)
T = TypeVar("T")


def _error(operation: int, reason: str) -> GenerationError | None:
    """The outcome of a job that ended with `operation`: None for success."""
    if operation == protocol.END:
        return None
    return DiskFullError(reason) if operation == protocol.FULL else GenerationError(reason)


class _Job(Generic[T]):
    """What one job produces, in order, as it arrives: `async for item in job`.

    Raises GenerationError (DiskFullError for a fill on a full disk) if the job fails. Call
    `cancel()` when abandoning it early, so that its process stops.
    """

    def __init__(self, process: _GeneratorProcess, job_id: int) -> None:
        self._process = process
        self.job_id = job_id
        self._items: deque[T] = deque()
        self._arrived = asyncio.Event()
        self._finished = False
        self._error: GenerationError | None = None
        self.cancelled = False

    def deliver(self, item: T) -> None:
        self._items.append(item)
        self._arrived.set()

    def finish(self, error: GenerationError | None = None) -> None:
        self._finished = True
        self._error = error
        self._arrived.set()

    def cancel(self) -> None:
        if not self._finished:
            self.cancelled = True
            self._process.cancel(self.job_id)
            self.finish(GenerationError("cancelled"))

    def __aiter__(self) -> _Job[T]:
        return self

    async def __anext__(self) -> T:
        while not self._items:
            if self._finished:
                if self._error is not None:
                    raise self._error
                raise StopAsyncIteration
            self._arrived.clear()
            await self._arrived.wait()
        self._consumed()
        return self._items.popleft()

    def _consumed(self) -> None:
        pass


class Generation(_Job[bytes]):
    """A stream: bytes of a body, sent by the process, at most `window` chunks ahead."""

    def _consumed(self) -> None:
        if not self._finished:
            self._process.grant(self.job_id)


class Filling(_Job[int]):
    """A fill: how many bytes of the body the process has written to the file so far."""


class _GeneratorProcess:
    """One `export_server.worker` process, the socket to it, and the jobs it is running.

    `launch()` starts the process at once and connects its socket in the background: messages
    sent before the connection is ready wait in `_backlog`, in order.
    """

    def __init__(self, pool: GeneratorPool) -> None:
        self.pool = pool
        self.jobs: dict[int, _Job[Any]] = {}
        self.alive = False
        self.process: subprocess.Popen[bytes] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._backlog: list[bytes] = []
        self._receiving: asyncio.Task[None] | None = None

    def launch(self) -> None:
        """Start the process (from the event loop's thread, which lives as long as the front
        process: Linux's parent-death signal fires when the starting thread exits)."""
        ours, theirs = socket.socketpair()
        with theirs:
            command = [sys.executable, "-m", "export_server.worker", str(theirs.fileno())]
            self.process = subprocess.Popen(
                [*command, str(os.getpid())], pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL
            )
        self.alive = True
        self._receiving = asyncio.create_task(self._run(ours))

    async def _run(self, ours: socket.socket) -> None:
        # `stop` cancels this task, so it never goes on past a stop, even one while connecting.
        reader, writer = await asyncio.open_unix_connection(sock=ours, limit=_STREAM_LIMIT)
        self._writer = writer
        for message in self._backlog:
            writer.write(message)
        self._backlog.clear()
        await self._receive(reader)

    def _send(self, message: bytes) -> None:
        if self._writer is not None:
            self._writer.write(message)
        elif self.alive:
            self._backlog.append(message)

    def submit(self, job: _Job[Any], download: Download, **spec: object) -> None:
        self.jobs[job.job_id] = job
        export_id = download.export.export_id
        self._send(protocol.start_message(job.job_id, export_id, download.id, **spec))

    def grant(self, job_id: int) -> None:
        if job_id in self.jobs:
            self._send(protocol.encode(job_id, protocol.CREDIT, protocol.COUNT.pack(1)))

    def cancel(self, job_id: int) -> None:
        if self.jobs.pop(job_id, None) is not None:
            self._send(protocol.encode(job_id, protocol.CANCEL))

    async def _receive(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                job_id, operation, length = protocol.HEADER.unpack(
                    await reader.readexactly(protocol.HEADER.size)
                )
                payload = await reader.readexactly(length) if length else b""
                job = self.jobs.get(job_id)
                if job is None:
                    continue  # cancelled: what was already on its way is dropped
                if operation == protocol.DATA:
                    job.deliver(payload)
                elif operation == protocol.PROGRESS:
                    job.deliver(protocol.OFFSET.unpack(payload)[0])
                else:
                    del self.jobs[job_id]
                    job.finish(_error(operation, payload.decode()))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        self._lost("generator process exited")
        if not self.pool.closing:
            log.error("a generator process exited unexpectedly; starting another")
            if self.process is not None:
                await asyncio.to_thread(self.process.wait)  # reap it: no zombie left behind
            await asyncio.sleep(_RESPAWN_DELAY)
            if not self.pool.closing:
                self.launch()

    def _lost(self, reason: str) -> None:
        self.alive = False
        for job in self.jobs.values():
            job.finish(GenerationError(reason))
        self.jobs.clear()
        self._backlog.clear()
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    async def stop(self, grace: float) -> None:
        """Close the socket (the process exits on EOF); kill it if it has not after `grace` s."""
        self._lost("the server is shutting down")
        if self._receiving is not None and self._receiving is not asyncio.current_task():
            self._receiving.cancel()
        if self.process is not None:
            try:
                await asyncio.to_thread(self.process.wait, grace)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class GeneratorPool:
    """`size` generator processes: `fill` writes a body into a file, `generate` streams any byte
    range of one. Call `start()` in the event loop that will use the pool before either; the
    processes themselves start with the first job. `close()` (or `kill()`) stops them."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a pool needs at least one process")
        self.size = size
        self.closing = False
        self._started = False
        self._launched = False
        self._processes = [_GeneratorProcess(self) for _ in range(size)]

    async def start(self) -> None:
        """Accept jobs from now on (in this event loop); no process is started yet."""
        self._started = True

    def generate(
        self, download: Download, start: int = 0, stop: int | None = None, window: int = 4
    ) -> Generation:
        """Bytes [start, stop) of the body (stop None: to the end), on the least busy process.

        At most `window` chunks are generated ahead of what the caller has consumed. Raises
        GenerationError when no process is running.
        """
        process = self._least_busy()
        generation = Generation(process, next(_job_ids))
        process.submit(generation, download, start=start, stop=stop, credit=window)
        return generation

    def fill(self, download: Download, path: Path) -> Filling:
        """Write the whole body into the existing, empty file at `path`, on the least busy
        process; it is synced to disk before the job ends. Raises GenerationError when no process
        is running."""
        process = self._least_busy()
        filling = Filling(process, next(_job_ids))
        process.submit(filling, download, path=str(path))
        return filling

    def _least_busy(self) -> _GeneratorProcess:
        if self._started and not self._launched and not self.closing:
            self._launched = True
            for process in self._processes:
                process.launch()
        running = [process for process in self._processes if process.alive]
        if self.closing or not running:
            raise GenerationError("no generator process is running")
        return min(running, key=lambda p: len(p.jobs))

    def busy(self) -> list[int]:
        """How many jobs each process is running, in process order."""
        return [len(process.jobs) for process in self._processes]

    def alive(self) -> list[bool]:
        """Whether each process is running (False while one that died is being replaced)."""
        return [process.alive for process in self._processes]

    def pids(self) -> list[int]:
        return [p.process.pid for p in self._processes if p.process is not None]

    async def close(self, grace: float = 1.0) -> None:
        self.closing = True
        await asyncio.gather(*(process.stop(grace) for process in self._processes))

    def kill(self) -> None:
        """Stop every process at once, without the event loop (for emergency exits)."""
        self.closing = True
        for process in self._processes:
            process.kill()
