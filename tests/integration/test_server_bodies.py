"""Bodies from a real generator pool, in-process: cold, warm, shared fills, full disks, dead workers."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from export_server import bodies as bodies_module
from export_server.bodies import Bodies
from export_server.cache import Cache, PendingEntry
from export_server.dataset import Download, downloads_of
from export_server.errors import GenerationError
from export_server.generate import generate_chunks
from export_server.pool import GeneratorPool
from export_server.size_table import SizeTable, packaged_sizes

DEMO_FIRST = downloads_of("demo")[0]
SMALL = downloads_of("small")


def whole(download: Download) -> bytes:
    return b"".join(generate_chunks(download))


DEMO_BODY = whole(DEMO_FIRST)


@asynccontextmanager
async def serving(
    cache: Cache | None, workers: int = 2, sizes: SizeTable | None = None
) -> AsyncIterator[Bodies]:
    bodies = Bodies(GeneratorPool(workers), cache, sizes)
    await bodies.start()
    try:
        yield bodies
    finally:
        await bodies.close()


async def collect(
    bodies: Bodies, download: Download, start: int = 0, stop: int | None = None
) -> bytes:
    return b"".join([chunk async for chunk in bodies.stream(download, start, stop)])


def entries(root: Path) -> list[Path]:
    return sorted(root.glob("v*/*/*.csv"))


def temporaries(root: Path) -> list[Path]:
    return sorted(root.glob("v*/*/.*.tmp"))


@pytest.mark.parametrize("span", [(0, None), (0, 1), (1000, 1040), (391_000, None)])
def test_without_a_cache_any_range_is_generated_and_skipped(span: tuple[int, int | None]) -> None:
    start, stop = span

    async def scenario() -> None:
        async with serving(None) as bodies:
            assert await collect(bodies, DEMO_FIRST, start, stop) == DEMO_BODY[start:stop]

    asyncio.run(scenario())


def test_cold_then_warm_gives_the_same_bytes(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with serving(Cache(tmp_path)) as bodies:
            cold = await collect(bodies, DEMO_FIRST)
            while not bodies.is_cached(DEMO_FIRST):
                await asyncio.sleep(0.01)  # the last bytes are out; the entry is being committed
            assert entries(tmp_path) == [Cache(tmp_path).entry_path(DEMO_FIRST)]
            warm = await collect(bodies, DEMO_FIRST)
            ranged = await collect(bodies, DEMO_FIRST, 5, 50)
        assert cold == warm == DEMO_BODY
        assert ranged == DEMO_BODY[5:50]

    asyncio.run(scenario())


@pytest.mark.slow
def test_concurrent_requests_share_one_generation(tmp_path: Path) -> None:
    download = SMALL[7]

    async def scenario() -> None:
        async with serving(Cache(tmp_path)) as bodies:
            first = asyncio.create_task(collect(bodies, download))
            await asyncio.sleep(0)
            second = asyncio.create_task(collect(bodies, download, 1_000_000, 2_000_000))
            await asyncio.sleep(0)
            assert sum(bodies.pool.busy()) == 1
            body, part = await asyncio.gather(first, second)
        assert body == whole(download)
        assert part == body[1_000_000:2_000_000]

    asyncio.run(scenario())


def test_concurrent_downloads_run_on_different_processes(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with serving(Cache(tmp_path)) as bodies:
            streams = [bodies.stream(download) for download in SMALL[:2]]
            for stream in streams:
                await anext(stream)
            assert bodies.pool.busy() == [1, 1]
            for stream in streams:
                await stream.aclose()

    asyncio.run(scenario())


def test_an_abandoned_generation_stops_and_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bodies_module, "ABANDON_GRACE", 0.0)

    async def scenario() -> None:
        async with serving(Cache(tmp_path)) as bodies:
            stream = bodies.stream(SMALL[0])
            await anext(stream)
            await stream.aclose()  # the client hung up
            while sum(bodies.pool.busy()):
                await asyncio.sleep(0.05)
            assert entries(tmp_path) == [] and temporaries(tmp_path) == []
            assert await collect(bodies, DEMO_FIRST) == DEMO_BODY

    asyncio.run(scenario())


def _with_size(download: Download, size: int) -> SizeTable:
    """The packaged table, but for the size it gives `download`."""
    table = packaged_sizes()
    sizes = {export_id: dict(by_id) for export_id, by_id in table.sizes.items()}
    sizes[download.export.export_id][download.id] = size
    return SizeTable(table.fingerprint, sizes)


@pytest.mark.parametrize("error", [+1, -1], ids=["table says longer", "table says shorter"])
def test_a_fill_whose_length_differs_from_the_size_table_is_not_committed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, error: int
) -> None:
    expected = len(DEMO_BODY) + error
    outcomes: list[str] = []

    async def scenario() -> None:
        sizes = _with_size(DEMO_FIRST, expected)
        async with serving(Cache(tmp_path), workers=1, sizes=sizes) as bodies:
            await bodies.prewarm([DEMO_FIRST], lambda download, outcome: outcomes.append(outcome))
            assert not bodies.is_cached(DEMO_FIRST)

    with caplog.at_level(logging.ERROR, logger="export_server"):
        asyncio.run(scenario())
    assert outcomes == ["not cached"]
    assert entries(tmp_path) == [] and temporaries(tmp_path) == []
    (message,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert message.endswith(f"generated {len(DEMO_BODY)} bytes, expected {expected}")


class _FullDiskCache(Cache):
    """Its entries are links to /dev/full: every write a generator process makes gets ENOSPC."""

    def create_entry(self, download: Download) -> PendingEntry:
        entry = super().create_entry(download)
        entry.path.unlink()
        entry.path.symlink_to("/dev/full")
        return entry


@pytest.mark.slow
@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_falls_back_to_streaming_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    downloads = SMALL[2:4]

    async def scenario() -> None:
        async with serving(_FullDiskCache(tmp_path)) as bodies:
            results = await asyncio.gather(*(collect(bodies, d) for d in downloads))
            assert results == [whole(d) for d in downloads]
            assert not bodies.caching
            assert await collect(bodies, DEMO_FIRST, 10, 20) == DEMO_BODY[10:20]

    with caplog.at_level(logging.WARNING, logger="export_server"):
        asyncio.run(scenario())
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "serving without the cache" in warnings[0].getMessage()
    assert entries(tmp_path) == [] and temporaries(tmp_path) == []


@pytest.mark.slow
def test_a_killed_generator_fails_the_stream_and_is_replaced() -> None:
    async def scenario() -> None:
        async with serving(None, workers=1) as bodies:
            stream = bodies.stream(SMALL[0])
            await anext(stream)
            (pid,) = bodies.pool.pids()
            os.kill(pid, signal.SIGKILL)
            with pytest.raises(GenerationError):
                async for _ in stream:
                    pass
            while bodies.pool.pids() == [pid] or not any(bodies.pool.alive()):
                await asyncio.sleep(0.1)
            assert await collect(bodies, DEMO_FIRST) == DEMO_BODY

    asyncio.run(scenario())


@pytest.mark.slow
def test_a_fill_whose_generator_dies_is_finished_by_another(tmp_path: Path) -> None:
    download = SMALL[0]

    async def scenario() -> None:
        async with serving(Cache(tmp_path), workers=2) as bodies:
            stream = bodies.stream(download)
            received = [await anext(stream)]
            (busy,) = [
                pid
                for pid, jobs in zip(bodies.pool.pids(), bodies.pool.busy(), strict=True)
                if jobs
            ]
            os.kill(busy, signal.SIGKILL)
            received += [chunk async for chunk in stream]
            assert b"".join(received) == whole(download)
            assert not bodies.is_cached(download)
            assert temporaries(tmp_path) == []

    asyncio.run(scenario())
