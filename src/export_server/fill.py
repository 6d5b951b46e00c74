"""A fill: one download being generated into the cache, readable while it grows.

A generator process writes the body into the entry's temporary file and reports its progress;
any number of requests follow that file from their own offsets, so concurrent requests for a cold
download share one generation, a request never waits for more than the bytes it is about to send,
and cold bytes reach a client the way warm ones do: from the file. The entry is committed (renamed
into place) only when the whole body is written, synced, and has the expected size.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable

from export_server.cache import PendingEntry
from export_server.dataset import Download
from export_server.errors import DiskFullError, GenerationError
from export_server.pool import Filling

log = logging.getLogger("export_server")

READ_CHUNK = 1 << 20


class Fill:
    """Follows `filling`, the job writing the whole body of `download` (`size` bytes) into `entry`.

    `on_disk_full` is called if the disk fills up. `on_finished` is called once the fill has
    ended, committed or not. A fill that nobody follows for `grace` seconds is cancelled, unless
    `keep` is set (prewarming): a client that was cut off usually resumes within that time.
    """

    def __init__(
        self, download: Download, size: int, entry: PendingEntry, filling: Filling,
        on_disk_full: Callable[[DiskFullError], None], on_finished: Callable[[Fill], None],
        grace: float,
    ) -> None:  # fmt: skip
        self.download = download
        self.size = size
        self.keep = False
        self.written = 0
        self.finished = False
        self.committed = False
        self._entry = entry
        self._filling = filling
        self._on_disk_full = on_disk_full
        self._on_finished = on_finished
        self._grace = grace
        self._readers = 0
        self._abandon: asyncio.TimerHandle | None = None
        self._changed = asyncio.Event()
        self.task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        try:
            async for written in self._filling:
                self.written = written
                self._notify()
            if self.written != self.size:
                raise GenerationError(f"generated {self.written} bytes, expected {self.size}")
            self._entry.commit()
            self.committed = True
        except DiskFullError as exc:
            self._on_disk_full(exc)
        except GenerationError as exc:
            if not self._filling.cancelled:
                log.error("generating %s into the cache failed: %s", self.download.id, exc)
        except OSError as exc:
            log.error("cannot commit %s to the cache: %s", self.download.id, exc)
        finally:
            self._filling.cancel()
            if not self.committed:
                self._entry.discard()
            self.finished = True
            self._notify()
            self._on_finished(self)

    def _notify(self) -> None:
        # Each waiter holds the event it waits on; a fresh one is ready for the next change.
        self._changed.set()
        self._changed = asyncio.Event()

    async def follow(self, start: int, stop: int) -> AsyncGenerator[bytes, None]:
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
                    chunk = await asyncio.to_thread(self._entry.pread, length, offset)
                    if not chunk:
                        return  # the file is shorter than reported: let the caller take over
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
            self._filling.cancel()

    async def wait(self) -> bool:
        """Wait until the fill has ended; True if the entry was committed to the cache."""
        await asyncio.shield(self.task)
        return self.committed
