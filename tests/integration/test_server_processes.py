"""The server's processes: how downloads spread over them, and that none outlives its parent."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest

from export_server.cache import Cache
from export_server.dataset import downloads_of
from tests.support.servers import RunningServer, server_command

StartServer = Callable[..., RunningServer]
LARGE = downloads_of("large")
SMALL = downloads_of("small")
DEMO = downloads_of("demo")


def generators(server_pid: int) -> list[psutil.Process]:
    """The server's generator processes."""
    children = psutil.Process(server_pid).children(recursive=True)
    return [c for c in children if "export_server.worker" in " ".join(c.cmdline())]


def all_gone(processes: list[psutil.Process]) -> bool:
    """Whether every process has exited (waiting up to 10 s for the last of them)."""
    _, alive = psutil.wait_procs(processes, timeout=10)
    return not alive


def data_url(url: str, export_id: str, download_id: object) -> str:
    return f"{url}/api/export/{export_id}/{download_id}/data"


def generate_a_little(url: str) -> None:
    """Have the server generate the first bytes of a body (a server without a cache must)."""
    response = httpx.get(data_url(url, "demo", DEMO[0].id), headers={"Range": "bytes=0-0"})
    assert response.status_code == 206


def test_workers_flag_sets_the_number_of_generator_processes(start_server: StartServer) -> None:
    running = start_server("--workers", "3", "--no-cache")
    assert httpx.get(f"{running.url}/api/export", timeout=30).status_code == 200
    assert generators(running.process.pid) == []  # none until a body must be generated
    generate_a_little(running.url)
    assert len(generators(running.process.pid)) == 3


def test_a_server_on_a_warm_cache_starts_no_generator_process(
    warm_server: RunningServer, start_server: StartServer
) -> None:
    running = start_server()  # the session's cache, which holds every body of demo
    for download in DEMO:
        response = httpx.get(data_url(running.url, "demo", download.id), timeout=30)
        assert response.status_code == 200 and response.content.startswith(b"patient_id,")
    assert generators(running.process.pid) == []


@pytest.mark.slow
def test_two_concurrent_downloads_are_generated_by_two_processes(
    start_server: StartServer,
) -> None:
    running = start_server("--workers", "2", "--no-cache")
    generate_a_little(running.url)
    workers = generators(running.process.pid)
    before = [w.cpu_times().user for w in workers]

    def download(index: int) -> None:
        with httpx.stream("GET", data_url(running.url, "small", SMALL[index].id)) as response:
            for _ in response.iter_raw():
                pass

    threads = [threading.Thread(target=download, args=(i,)) for i in (2, 7)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    used = [w.cpu_times().user - b for w, b in zip(workers, before, strict=True)]
    # Each body is about 600,000 rows: seconds of CPU for whichever process generated it.
    assert min(used) > 0.3, used


@pytest.mark.slow
def test_a_front_killed_with_sigkill_takes_its_generators_along(start_server: StartServer) -> None:
    running = start_server("--no-cache")
    with httpx.stream("GET", data_url(running.url, "large", LARGE[3].id), timeout=60) as response:
        next(response.iter_raw())
        workers = generators(running.process.pid)
        running.process.send_signal(signal.SIGKILL)
    assert workers and all_gone(workers)


@pytest.mark.slow
def test_sigterm_stops_the_server_and_its_generators_mid_stream(
    start_server: StartServer, tmp_path: Path
) -> None:
    running = start_server("--cache-dir", str(tmp_path))
    with httpx.stream("GET", data_url(running.url, "large", LARGE[3].id), timeout=60) as response:
        chunks = response.iter_raw()
        next(chunks)
        workers = generators(running.process.pid)
        assert workers
        running.process.terminate()
        with pytest.raises(httpx.RemoteProtocolError):
            for _ in chunks:
                pass
    assert all_gone([psutil.Process(running.process.pid), *workers])
    assert list(tmp_path.glob("v*/*/*")) == []  # neither an entry nor a temporary file


@pytest.mark.slow
def test_a_kill_during_a_cache_write_leaves_no_entry_and_is_cleaned_up(
    start_server: StartServer, tmp_path: Path
) -> None:
    download = LARGE[0]
    running = start_server("--cache-dir", str(tmp_path))
    url = data_url(running.url, "large", download.id)
    with httpx.stream("GET", url, timeout=60) as response:
        first = next(response.iter_raw())
        workers = generators(running.process.pid)
        running.process.send_signal(signal.SIGKILL)
    assert workers and all_gone(workers)
    cache = Cache(tmp_path)
    assert list(tmp_path.glob("v*/large/.*.tmp")) != []
    assert not cache.entry_path(download).exists()

    restarted = start_server("--cache-dir", str(tmp_path))
    assert "removed 1 unfinished" in restarted.wait_for_line(r"^cache: removed")
    assert list(tmp_path.glob("v*/large/*")) == []
    again = httpx.get(
        url.replace(running.url, restarted.url),
        timeout=60,
        headers={"Range": f"bytes=0-{len(first) - 1}"},
    )
    assert again.status_code == 206 and again.content == first


@pytest.mark.slow
def test_exit_with_parent_ends_every_server_process_when_the_parent_is_killed() -> None:
    # The parent starts the server and relays its stderr; then the parent is killed with SIGKILL.
    relay = (
        "import subprocess, sys\n"
        "server = subprocess.Popen(sys.argv[1:], stderr=subprocess.PIPE, text=True)\n"
        "print(server.pid, flush=True)\n"
        "for line in server.stderr:\n"
        "    print(line, end='', flush=True)\n"
    )
    command = server_command(["--exit-with-parent", "--no-cache", "--workers", "2"])
    parent = subprocess.Popen(
        [sys.executable, "-c", relay, *command], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    server_pid = int(parent.stdout.readline())
    for line in parent.stdout:
        if line.startswith("listening on"):
            generate_a_little(line.split()[-1])
            break
    server = psutil.Process(server_pid)
    processes = [server, *generators(server_pid)]
    assert len(processes) == 3
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    assert all_gone(processes)


@pytest.mark.slow
def test_every_process_stays_under_150_mb_while_serving_large(
    start_server: StartServer, tmp_path: Path
) -> None:
    running = start_server("--cache-dir", str(tmp_path))
    server = psutil.Process(running.process.pid)
    peaks: dict[int, int] = {}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            for process in [server, *server.children(recursive=True)]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    peaks[process.pid] = max(peaks.get(process.pid, 0), process.memory_info().rss)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        url = data_url(running.url, "large", LARGE[4].id)
        for _ in ("cold", "warm"):
            with httpx.stream("GET", url, timeout=60) as response:
                received = sum(len(chunk) for chunk in response.iter_raw(1 << 20))
            assert received == int(response.headers["content-length"])
    finally:
        done.set()
        sampler.join()
    assert len(peaks) == 3
    assert max(peaks.values()) < 150_000_000, peaks
