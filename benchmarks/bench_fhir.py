"""FHIR Bulk Data files against the CSV downloads they are made from, over HTTP, warm.

    uv run python -m benchmarks.bench_fhir [--runs K] [--downloads N] [--cache-dir DIR]

Starts the real server (`python -m export_server`) on a free port and kicks off
`Group/small/$export?_type=Observation`, whose job generates `small` into the cache unless it is
there (`--cache-dir`: an existing cache, e.g. ~/.cache/export-tally/bodies; default: a fresh one,
which takes a minute), then streams with a lean client (http.client into one buffer), warm,
median of K runs after a warm-up:

- CSV, one stream: the first N downloads of `small`, one after another;
- NDJSON, one stream: their Observation files (identity), one after another;
- NDJSON, two streams: two files at once, with the CPU seconds each kind of server process
  used over the wall seconds of those runs, and whether that kept every core busy;
- NDJSON gzip, one stream: the files gzip-compressed (bytes counted as sent, compressed).

Each as bytes/s and rows/s (a row is a CSV row or an Observation), with the NDJSON's ratio to
the CSV. The NDJSON is made while it is served (the converter processes), the CSV read from disk.
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

import httpx
import psutil

from export_server.dataset import downloads_of
from tests.support.fhir import export_manifest
from tests.support.servers import running_server

SMALL = downloads_of("small")


def stream(url: str, headers: dict[str, str] | None = None) -> int:
    """GET the URL with a lean client; the number of body bytes received."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port)
    connection.request("GET", parts.path, headers=headers or {})
    response = connection.getresponse()
    assert response.status == 200, response.status
    buffer = bytearray(1 << 20)
    received = 0
    while read := response.readinto(buffer):
        received += read
    connection.close()
    return received


def timed(action: Callable[[], int], runs: int) -> tuple[float, int]:
    """(median seconds, bytes) of `runs` calls after a warm-up call."""
    size = action()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times), size


def cpu_seconds(pid: int) -> dict[str, float]:
    """CPU seconds so far of the front process and of its children, by kind."""
    root = psutil.Process(pid)
    spent = {"front": sum(root.cpu_times()[:2]), "generators": 0.0, "converters": 0.0}
    for child in root.children(recursive=True):
        try:
            kind = "generators" if "export_server.worker" in child.cmdline() else "converters"
            spent[kind] += sum(child.cpu_times()[:2])
        except psutil.NoSuchProcess:
            continue
    return spent


def line(label: str, seconds: float, size: int, rows: int, baseline: float | None) -> float:
    rate = rows / seconds
    ratio = f"  {rate / baseline:5.2f}x the CSV's rows/s" if baseline else ""
    print(f"{label:28s} {size / seconds / 1e6:9,.0f} MB/s {rate:12,.0f} rows/s{ratio}")
    return rate


def cores_busy(before: dict[str, float], after: dict[str, float], wall: float) -> None:
    """Print the server's CPU seconds over `wall` seconds, by kind of process and in all, and
    whether that is every core of the machine (at least 75% of each, on average)."""
    used = {kind: (after[kind] - before[kind]) / wall for kind in after}
    cores = psutil.cpu_count() or 1
    total = sum(used.values())
    verdict = "every core busy" if total >= 0.75 * cores else "NOT every core busy"
    kinds = ", ".join(f"{kind} {share:.2f}" for kind, share in used.items())
    print(f"  server CPU s / wall s, two streams: {kinds}; {total:.2f} of {cores} cores: {verdict}")


def measure(url: str, pid: int, runs: int, count: int) -> None:
    chosen = SMALL[:count]
    rows = sum(d.rows for d in chosen)
    with httpx.Client(timeout=600) as client:
        manifest = export_manifest(client, f"{url}/fhir/Group/small/$export", _type="Observation")
    files = [entry["url"] for entry in manifest["output"][:count]]
    csvs = [f"{url}/api/export/small/{d.id}/data" for d in chosen]

    def each(urls: list[str], headers: dict[str, str] | None = None) -> Callable[[], int]:
        return lambda: sum(stream(u, headers) for u in urls)

    seconds, size = timed(each(csvs), runs)
    csv_rate = line("CSV, one stream", seconds, size, rows, None)
    seconds, size = timed(each(files), runs)
    line("NDJSON, one stream", seconds, size, rows, csv_rate)

    def two_at_once() -> int:
        sizes: list[int] = []
        halves = [files[0::2], files[1::2]]
        threads = [threading.Thread(target=lambda h=h: sizes.append(each(h)())) for h in halves]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return sum(sizes)

    before, started = cpu_seconds(pid), time.perf_counter()
    seconds, size = timed(two_at_once, runs)
    wall, after = time.perf_counter() - started, cpu_seconds(pid)
    line("NDJSON, two streams", seconds, size, rows, csv_rate)
    cores_busy(before, after, wall)
    seconds, size = timed(each(files, {"Accept-Encoding": "gzip"}), runs)
    line("NDJSON gzip, one stream", seconds, size, rows, csv_rate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per figure (default 5)")
    parser.add_argument("--downloads", type=int, default=4, help="of small (default 4)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="a cache holding small")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-fhir-") as fresh:
        directory = str(args.cache_dir or fresh)
        with running_server(["--cache-dir", directory]) as server:
            print(f"small, {args.downloads} downloads; median of {args.runs} runs, warm")
            print(f"load average before: {os.getloadavg()[0]:.2f}")
            measure(server.url, server.process.pid, args.runs, args.downloads)
            print(f"load average after:  {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
