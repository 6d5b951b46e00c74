"""The cache, Range and ETag on the wire, cold and warm, and the cache's care at start-up."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from export_server.bodies import etag_of
from export_server.cache import Cache
from export_server.dataset import downloads_of
from export_server.generate import generate_chunks
from tests.support.processes import wait_for
from tests.support.servers import RunningServer

DEMO_FIRST, DEMO_SECOND = downloads_of("demo")
DEMO_SECOND_BODY = b"".join(generate_chunks(DEMO_SECOND))
SIZE = len(DEMO_SECOND_BODY)
StartServer = Callable[..., RunningServer]


def data_url(running: RunningServer, export_id: str, download_id: object) -> str:
    return f"{running.url}/api/export/{export_id}/{download_id}/data"


def get(url: str, **headers: str) -> httpx.Response:
    return httpx.get(url, headers=headers, timeout=60)


def entries(root: Path) -> list[Path]:
    return sorted(root.glob("v*/*/*.csv"))


@pytest.fixture
def cold(start_server: StartServer, tmp_path: Path) -> RunningServer:
    """A server with an empty cache of its own."""
    return start_server("--cache-dir", str(tmp_path))


def test_a_cold_download_is_streamed_then_served_from_the_cache(
    cold: RunningServer, tmp_path: Path
) -> None:
    url = data_url(cold, "demo", DEMO_SECOND.id)
    first = get(url)
    assert first.status_code == 200 and first.content == DEMO_SECOND_BODY
    assert first.headers["content-length"] == str(SIZE)
    # The last bytes are sent before the entry is committed (synced, renamed): wait for it.
    assert wait_for(
        lambda: entries(tmp_path) == [Cache(tmp_path).entry_path(DEMO_SECOND)], timeout=30
    )
    second = get(url)
    assert second.content == DEMO_SECOND_BODY
    assert second.headers["content-length"] == str(SIZE)
    assert second.headers["etag"] == first.headers["etag"] == etag_of(DEMO_SECOND)


@pytest.mark.parametrize(
    "header, span",
    [("bytes=1000-1999", (1000, 2000)), ("bytes=400000-", (400_000, SIZE)),
     ("bytes=-100", (SIZE - 100, SIZE)), ("bytes=0-0", (0, 1)), ("bytes=424000-999999", (424_000, SIZE))],
)  # fmt: skip
def test_ranges_of_an_uncached_download(
    cold: RunningServer, header: str, span: tuple[int, int]
) -> None:
    response = get(data_url(cold, "demo", DEMO_SECOND.id), Range=header)
    start, stop = span
    assert response.status_code == 206
    assert response.content == DEMO_SECOND_BODY[start:stop]
    assert response.headers["content-range"] == f"bytes {start}-{stop - 1}/{SIZE}"
    assert response.headers["content-length"] == str(stop - start)
    assert response.headers["etag"] == etag_of(DEMO_SECOND)
    assert response.headers["accept-ranges"] == "bytes"


@pytest.mark.parametrize("header", [f"bytes={SIZE}-", f"bytes={SIZE + 5}-{SIZE + 10}"])
def test_unsatisfiable_range_is_416(cold: RunningServer, header: str) -> None:
    response = get(data_url(cold, "demo", DEMO_SECOND.id), Range=header)
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{SIZE}"
    assert response.headers["etag"] == etag_of(DEMO_SECOND)


def test_if_range_is_honoured_cold_and_warm(cold: RunningServer) -> None:
    url = data_url(cold, "demo", DEMO_SECOND.id)
    for _ in ("cold", "warm"):
        current = get(url, Range="bytes=10-19", **{"If-Range": etag_of(DEMO_SECOND)})
        assert current.status_code == 206 and current.content == DEMO_SECOND_BODY[10:20]
        stale = get(url, Range="bytes=10-19", **{"If-Range": '"an-older-version"'})
        assert stale.status_code == 200 and stale.content == DEMO_SECOND_BODY


def test_etag_is_the_same_on_every_server(server: RunningServer, cold: RunningServer) -> None:
    tags = {get(data_url(s, "demo", DEMO_FIRST.id)).headers["etag"] for s in (server, cold)}
    assert tags == {etag_of(DEMO_FIRST)}


def test_no_range_mode_stays_chunked_for_a_cached_body(
    warm_server: RunningServer, start_server: StartServer
) -> None:
    running = start_server("--no-range")
    response = get(data_url(running, "demo", DEMO_SECOND.id), Range="bytes=10-")
    assert response.status_code == 200
    assert response.headers["transfer-encoding"] == "chunked"
    for header in ("content-length", "etag", "accept-ranges"):
        assert header not in response.headers
    assert response.content == DEMO_SECOND_BODY


def read_until_cut(url: str) -> tuple[bytes, bool]:
    """The bytes received, and whether the body ended cleanly."""
    received = bytearray()
    try:
        with httpx.stream("GET", url, timeout=60) as response:
            for chunk in response.iter_raw():
                received += chunk
    except httpx.RemoteProtocolError:
        return bytes(received), False
    return bytes(received), True


@pytest.mark.parametrize("mode", [(), ("--no-range",), ("--no-cache",)])
def test_drops_cut_cached_and_uncached_bodies_within_their_size(
    warm_server: RunningServer, start_server: StartServer, mode: tuple[str, ...]
) -> None:
    running = start_server("--drop-rate", "1", "--fault-seed", "8", *mode)
    for _ in range(3):
        body, clean = read_until_cut(data_url(running, "demo", DEMO_SECOND.id))
        assert not clean
        assert 0 < len(body) < SIZE


def test_start_up_reports_the_cache(start_server: StartServer, tmp_path: Path) -> None:
    running = start_server("--cache-dir", str(tmp_path))
    assert running.wait_for_line(r"^cache: ") == f"cache: {tmp_path} (0 downloads, 0.0 MB)\n"
    assert start_server("--no-cache").wait_for_line(r"^cache: ") == "cache: off\n"


def test_clear_cache_empties_it(start_server: StartServer, tmp_path: Path) -> None:
    first = start_server("--cache-dir", str(tmp_path), "--prewarm", "demo")
    first.wait_for_line(r"^prewarm: done")
    assert len(entries(tmp_path)) == 2
    second = start_server("--cache-dir", str(tmp_path), "--clear-cache")
    assert "cleared 2 downloads (0.8 MB)" in second.wait_for_line(r"^cache: cleared")
    assert second.wait_for_line(r"^cache: /") == f"cache: {tmp_path} (0 downloads, 0.0 MB)\n"
    assert entries(tmp_path) == []


def test_leftovers_of_a_killed_writer_are_removed_at_start_up(
    start_server: StartServer, tmp_path: Path
) -> None:
    leftover = Cache(tmp_path).entry_path(DEMO_FIRST).with_name(".leftover.0123.tmp")
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"patient_id,event")
    running = start_server("--cache-dir", str(tmp_path))
    assert "removed 1 unfinished" in running.wait_for_line(r"^cache: removed")
    assert not leftover.exists()


def test_prewarm_reports_progress_and_fills_the_cache(
    start_server: StartServer, tmp_path: Path
) -> None:
    running = start_server("--cache-dir", str(tmp_path), "--prewarm", "demo")
    assert running.wait_for_line(r"^prewarm: done").startswith(
        "prewarm: done, 2/2 downloads cached"
    )
    progress = [line for line in running.log if line.startswith("prewarm: ") and "/2 demo/" in line]
    assert len(progress) == 2 and all(line.endswith(", cached)\n") for line in progress)
    again = start_server("--cache-dir", str(tmp_path), "--prewarm", "demo")
    again.wait_for_line(r"^prewarm: done")
    assert sum("already cached" in line for line in again.log) == 2
    cache = Cache(tmp_path)
    assert entries(tmp_path) == sorted(cache.entry_path(d) for d in downloads_of("demo"))
    assert cache.entry_path(DEMO_SECOND).read_bytes() == DEMO_SECOND_BODY


@pytest.mark.slow
def test_prewarmed_small_is_complete(
    warm_small_server: RunningServer, server_cache_dir: Path
) -> None:
    assert warm_small_server.wait_for_line(r"^prewarm: done").startswith(
        "prewarm: done, 12/12 downloads cached"
    )
    small = downloads_of("small")
    cache = Cache(server_cache_dir)
    sizes = [cache.entry_path(d).stat().st_size for d in small]
    body = b"".join(generate_chunks(small[7]))
    assert sizes[7] == len(body)
    assert get(data_url(warm_small_server, "small", small[7].id)).content == body
