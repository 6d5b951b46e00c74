"""A fill: one download being generated into the cache, readable while it grows.

A pump task moves the chunks of one generation job into the cache's temporary file; any number of
requests follow that file from their own offsets, so concurrent requests for a cold download share
one generation, and a request never waits for more than the bytes it is about to send. The entry
is committed (renamed into place) only when the whole body is written and has the expected size.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import AsyncIterator, Callable

from export_server.cache import CacheWriter
from export_server.dataset import Download
from export_server.errors import GenerationError
from export_server.pool import Generation

log = logging.getLogger("export_server")

READ_CHUNK = 1 << 20
# Out-of-space errors: the fill gives up on the cache, and the server stops caching.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class Fill:
    """Writes `generation` (the whole body of `download`, `size` bytes) through `writer`.

    `on_disk_full` is called if a write fails for lack of space. `on_finished` is called once the
    fill has ended, committed or not. A fill that nobody follows for `grace` seconds is cancelled,
    unless `keep` is set (prewarming): a client that was cut off usually resumes within that time.
    """

    def __init__(
        self, download: Download, size: int, writer: CacheWriter, generation: Generation,
        on_disk_full: Callable[[OSError], None], on_finished: Callable[[Fill], None],
        grace: float,
    ) -> None:  # fmt: skip
        self.download = download
        self.size = size
        self.keep = False
        self.written = 0
        self.finished = False
        self.committed = False
        self._writer = writer
        self._generation = generation
        self._on_disk_full = on_disk_full
        self._on_finished = on_finished
        self._grace = grace
        self._readers = 0
        self._abandon: asyncio.TimerHandle | None = None
        self._changed = asyncio.Event()
        self.task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        try:
            async for chunk in self._generation:
                await asyncio.to_thread(self._writer.write, chunk)
                self.written += len(chunk)
                self._notify()
            if self.written != self.size:
                raise GenerationError(f"generated {self.written} bytes, expected {self.size}")
            await asyncio.to_thread(self._writer.commit)
            self.committed = True
        except OSError as exc:
            self._generation.cancel()
            if exc.errno in DISK_FULL:
                self._on_disk_full(exc)
            else:
                log.warning("cannot cache %s: %s", self.download.id, exc)
        except GenerationError as exc:
            if str(exc) != "cancelled":
                log.error("generating %s failed: %s", self.download.id, exc)
        finally:
            self._generation.cancel()
            if not self.committed:
                self._writer.discard()
            self.finished = True
            self._notify()
            self._on_finished(self)

    def _notify(self) -> None:
        # Each waiter holds the event it waits on; a fresh one is ready for the next change.
        self._changed.set()
        self._changed = asyncio.Event()

    async def follow(self, start: int, stop: int) -> AsyncIterator[bytes]:
        """Bytes [start, stop) as they are written. Ends early (short) if the fill fails."""
        self._readers += 1
        if self._abandon is not None:
            self._abandon.cancel()
            self._abandon = None
        try:
            offset = start
            while offset < stop:
                if offset < self.written:
                    length = min(READ_CHUNK, self.written - offset, stop - offset)
                    chunk = await asyncio.to_thread(self._writer.pread, length, offset)
                    offset += len(chunk)
                    yield chunk
                elif self.finished:
                    return
                else:
                    await self._changed.wait()
        finally:
            self._readers -= 1
            if self._readers == 0 and not self.finished and not self.keep:
                loop = asyncio.get_running_loop()
                self._abandon = loop.call_later(self._grace, self._abandon_if_unused)

    def _abandon_if_unused(self) -> None:
        if self._readers == 0 and not self.keep and not self.finished:
            log.info("nobody reads %s any more: generation stopped", self.download.id)
            self._generation.cancel()

    async def wait(self) -> bool:
        """Wait until the fill has ended; True if the entry was committed to the cache."""
        await asyncio.shield(self.task)
        return self.committed
