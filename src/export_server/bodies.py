"""Where a body's bytes come from: the disk cache when it has them, else a generator process.

- warm: the committed cache entry is read from disk;
- cold, with a cache: a `Fill` has a generator process write the body into the cache once, and
  every request for that download, whatever its range, follows the file as it grows (no request
  ever waits for the whole body, and concurrent requests share one generation);
- without a cache (`--no-cache`, or after the disk filled up): each request runs its own
  generation job, from its first byte ("generate and skip" for a range).

A body's size and ETag are known before a byte is generated, because the content is deterministic:
the size from the body-size table (`size_table.py`), the ETag from the dataset's fingerprint.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import mmap
from collections.abc import AsyncGenerator, Callable, Iterable
from contextlib import aclosing
from typing import Literal

from export_server.cache import Cache, OpenFile
from export_server.dataset import Download
from export_server.fill import READ_CHUNK, Fill
from export_server.fingerprint import definition_fingerprint
from export_server.pool import GeneratorPool
from export_server.size_table import SizeTable, packaged_sizes

log = logging.getLogger("export_server")

# Chunks a generation may run ahead of its consumer: enough to keep a process busy while the
# front writes or sends the previous ones, little enough to bound memory (a chunk is < 1 MB).
WINDOW = 4
# How long a fill nobody follows keeps going: a client that was cut off resumes well within it.
ABANDON_GRACE = 5.0

Prewarmed = Literal["cached", "already cached", "not cached"]


def etag_of(download: Download) -> str:
    """A strong ETag, known before a byte is generated because the content is deterministic.

    It changes with the dataset's fingerprint, so an edited definition never reuses an old tag.
    """
    key = f"{definition_fingerprint()}/{download.export.export_id}/{download.id}".encode()
    return '"' + hashlib.sha256(key).hexdigest()[:32] + '"'


async def _read_file(file: OpenFile, start: int, stop: int) -> AsyncGenerator[bytes, None]:
    """Bytes [start, stop) of an open file, a megabyte at a time."""
    offset = start
    while offset < stop:
        chunk = await asyncio.to_thread(file.pread, min(READ_CHUNK, stop - offset), offset)
        if not chunk:
            return  # shorter than expected: the Content-Length sent tells the client
        offset += len(chunk)
        yield chunk


def _mapped_file(file: OpenFile, start: int, stop: int) -> AsyncGenerator[memoryview, None] | None:
    """Bytes [start, stop) of an open file as views of it mapped in memory, a megabyte at a
    time; None when it cannot be mapped (an empty file, one mmap refuses, no madvise).

    For a response that only sends them: from the page cache to the socket the bytes cost one
    copy, the kernel's, where `pread` adds another and a fresh megabyte that faults in page by
    page (the front's CPU to send a warm `small` fell from 0.28 to 0.12 s). The kernel reads each
    megabyte ahead (MADV_WILLNEED) while the one before is sent, so the event loop rarely waits
    for the disk; each megabyte is unmapped again once the next one is sent (MADV_DONTNEED: file
    pages, found in the page cache again if touched), so the front's RSS does not grow with the
    body.
    """
    if not hasattr(mmap, "MADV_DONTNEED"):  # no madvise (Windows): the RSS would grow
        return None
    try:
        mapped = mmap.mmap(file.fd, 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        return None
    return _views(mapped, start, min(stop, len(mapped)))


async def _views(mapped: mmap.mmap, start: int, stop: int) -> AsyncGenerator[memoryview, None]:
    view = memoryview(mapped)
    _advise(mapped, mmap.MADV_WILLNEED, start, min(start + READ_CHUNK, stop))
    sent = start  # bytes before this are on their way: the socket took them
    for offset in range(start, stop, READ_CHUNK):
        end = min(offset + READ_CHUNK, stop)
        _advise(mapped, mmap.MADV_WILLNEED, end, min(end + READ_CHUNK, stop))
        yield view[offset:end]
        # Asked for more: the send of this megabyte has returned, but its tail may still wait
        # in the transport (which touches its pages again); the megabyte before it is gone.
        _advise(mapped, mmap.MADV_DONTNEED, sent, offset)
        sent = offset


def _advise(mapped: mmap.mmap, option: int, start: int, stop: int) -> None:
    """madvise the pages that hold bytes [start, stop), if any."""
    if start < stop:
        first = start - start % mmap.PAGESIZE
        mapped.madvise(option, first, stop - first)


class Bodies:
    """Serves bodies from `cache` (None: no cache) and `pool`; `start()` before use, `close()` after.

    `sizes` gives every body's length (default: the packaged table, checked: SizeTableError if it
    is not current).
    """

    def __init__(
        self, pool: GeneratorPool, cache: Cache | None = None, sizes: SizeTable | None = None
    ) -> None:
        self.pool = pool
        self.cache = cache
        self.sizes = sizes or packaged_sizes()
        self._fills: dict[Download, Fill] = {}

    @property
    def caching(self) -> bool:
        return self.cache is not None

    async def start(self) -> None:
        await self.pool.start()

    async def close(self) -> None:
        fills = [fill.task for fill in self._fills.values()]
        for task in fills:
            task.cancel()
        await asyncio.gather(*fills, return_exceptions=True)
        await self.pool.close()

    def size(self, download: Download) -> int:
        return self.sizes.size(download)

    def is_cached(self, download: Download) -> bool:
        return self.cache is not None and self.cache.entry_path(download).is_file()

    async def stream(
        self, download: Download, start: int = 0, stop: int | None = None
    ) -> AsyncGenerator[bytes, None]:
        """The bytes [start, stop) of the body (stop None: to the end), as soon as they exist.

        Raises GenerationError if they cannot be generated. Close the generator (`aclose`) when
        abandoning it, so that generation for it stops.
        """
        stop = self.size(download) if stop is None else stop
        offset = start
        if self.cache is not None:
            file = self.cache.open_entry(download)
            if file is not None:
                async for chunk in _read_file(file, start, stop):
                    yield chunk
                return
            fill = self._fill(download)
            if fill is not None:
                # aclosing: a request that ends early stops following at once, not when collected.
                async with aclosing(fill.follow(start, stop)) as chunks:
                    async for chunk in chunks:
                        offset += len(chunk)
                        yield chunk
        if offset < stop:
            # No cache, or the fill failed part-way: generate the rest for this request alone.
            generation = self.pool.generate(download, offset, stop, WINDOW)
            try:
                async for chunk in generation:
                    yield chunk
            finally:
                generation.cancel()

    async def stream_to_send(
        self, download: Download, start: int = 0, stop: int | None = None
    ) -> AsyncGenerator[bytes | memoryview, None]:
        """What `stream` gives, for a response that only sends it: a cached body comes as views
        of its file mapped in memory (see `_mapped_file`), which cost the front half the CPU."""
        stop = self.size(download) if stop is None else stop
        file = self.cache.open_entry(download) if self.cache is not None else None
        views = _mapped_file(file, start, stop) if file is not None else None
        chunks = self.stream(download, start, stop) if views is None else views
        async with aclosing(chunks):
            async for chunk in chunks:
                yield chunk

    def _fill(self, download: Download) -> Fill | None:
        """The download's fill in progress, or a new one; None when the cache cannot take it."""
        fill = self._fills.get(download)
        if fill is not None or self.cache is None:
            return fill
        try:
            entry = self.cache.create_entry(download)
        except OSError as exc:
            self._cache_failed(exc.strerror or str(exc))
            return None
        filling = self.pool.fill(download, entry.path)
        fill = Fill(
            download, self.size(download), entry, filling,
            on_disk_full=lambda exc: self._cache_failed(str(exc)), on_finished=self._fill_finished,
            grace=ABANDON_GRACE,
        )  # fmt: skip
        self._fills[download] = fill
        return fill

    def _fill_finished(self, fill: Fill) -> None:
        if self._fills.get(fill.download) is fill:
            del self._fills[fill.download]

    def _cache_failed(self, reason: str) -> None:
        """Stop caching for good, with one warning: serving bodies matters more than caching them."""
        if self.cache is not None:
            log.warning(
                "cache: cannot write to %s (%s): serving without the cache from now on",
                self.cache.root, reason,
            )  # fmt: skip
            self.cache = None

    async def prewarm(
        self, downloads: Iterable[Download], on_done: Callable[[Download, Prewarmed], None]
    ) -> None:
        """Generate each download into the cache, as many at once as there are processes.

        `on_done(download, outcome)` is called as each one ends.
        """
        slots = asyncio.Semaphore(self.pool.size)

        async def warm(download: Download) -> None:
            async with slots:
                if self.is_cached(download):
                    on_done(download, "already cached")
                    return
                fill = self._fill(download)
                if fill is None:
                    on_done(download, "not cached")
                    return
                fill.keep = True
                on_done(download, "cached" if await fill.wait() else "not cached")

        await asyncio.gather(*(warm(download) for download in downloads))
