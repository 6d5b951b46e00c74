"""The server over HTTP: cold and warm streams, one and two at once, and memory per process.

    uv run python -m benchmarks.bench_server [--runs K] [--workers N]

Starts the real server (`python -m export_server`) with a fresh cache directory and streams bodies
to a lean client (http.client reading into one buffer). Every figure is the median of K runs after
a warm-up, in rows per second, printed with its ratio to a baseline measured in the same run:

- oracle: the per-row algorithm of docs/server.md, in this process, on one core (the reference's
  speed);
- cold, one stream: a download that is not cached (its entry is deleted before each run);
- cold, two streams: two different uncached downloads at once, rows of both over the wall time;
- warm, one stream: a cached `large` download.

Then the peak resident memory of the front process and of each generator process, sampled while a
cold and then a warm `large` download stream.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import psutil

from benchmarks.bench_generate import oracle_rows, rate
from export_server.cache import Cache
from export_server.dataset import Download, downloads_of
from tests.support.servers import RunningServer, running_server

SMALL = downloads_of("small")
# Two small downloads of about the same length and patient count, so two streams overlap fully.
ONE, OTHER = SMALL[4], SMALL[2]
WARM = downloads_of("large")[4]


def stream(url: str, download: Download) -> int:
    """Download the body with a lean client; returns its length in bytes."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port)
    connection.request("GET", f"/api/export/{download.export.export_id}/{download.id}/data")
    response = connection.getresponse()
    buffer = bytearray(1 << 20)
    received = 0
    while read := response.readinto(buffer):
        received += read
    connection.close()
    return received


def forget(cache: Cache, download: Download) -> None:
    """Make the download cold again: wait for its entry to be committed, then delete it."""
    path = cache.entry_path(download)
    while not path.exists():
        time.sleep(0.01)
    path.unlink()


def timed(action: Callable[[], None], runs: int) -> float:
    """Median seconds of `runs` calls after a warm-up call."""
    action()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


class MemoryWatch:
    """Samples the resident memory of a process and its children every 20 ms; keeps the peaks."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.peaks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            for process in [self.root, *self.root.children(recursive=True)]:
                try:
                    rss = process.memory_info().rss
                except psutil.NoSuchProcess:
                    continue
                self.peaks[process.pid] = max(self.peaks.get(process.pid, 0), rss)

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def measure(server: RunningServer, cache: Cache, runs: int) -> None:
    url = server.url
    oracle = rate(lambda: oracle_rows(ONE, 200_000), runs)
    print(f"oracle, in-process, one core  {oracle:12,.0f} rows/s")

    def cold_one() -> None:
        stream(url, ONE)
        forget(cache, ONE)

    cold = ONE.rows / timed(cold_one, runs)
    print(f"cold, one stream              {cold:12,.0f} rows/s  {cold / oracle:5.2f}x oracle")

    def cold_two() -> None:
        threads = [threading.Thread(target=stream, args=(url, d)) for d in (ONE, OTHER)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        forget(cache, ONE)
        forget(cache, OTHER)

    two = (ONE.rows + OTHER.rows) / timed(cold_two, runs)
    print(f"cold, two streams together    {two:12,.0f} rows/s  {two / cold:5.2f}x one stream")

    def warm_one() -> None:
        stream(url, WARM)

    with MemoryWatch(server.process.pid) as memory:
        warm = WARM.rows / timed(warm_one, runs)
    print(
        f"warm, one stream ({WARM.export.export_id})       {warm:12,.0f} rows/s  {warm / cold:5.2f}x cold"
    )
    front = memory.peaks.pop(server.process.pid)
    generators = ", ".join(f"{peak / 1e6:.0f} MB" for peak in memory.peaks.values())
    print(f"peak RSS: front {front / 1e6:.0f} MB; generator processes {generators}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per figure (default 5)")
    parser.add_argument("--workers", type=int, default=2, help="generator processes (default 2)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-server-") as directory:
        cache = Cache(Path(directory))
        server_args = ["--workers", str(args.workers), "--cache-dir", directory]
        with running_server(server_args) as server:
            print(f"server: {args.workers} generator processes; median of {args.runs} runs")
            # Other processes' load skews every figure: say how busy the machine was.
            print(f"load average before: {os.getloadavg()[0]:.2f}")
            measure(server, cache, args.runs)
            print(f"load average after:  {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
