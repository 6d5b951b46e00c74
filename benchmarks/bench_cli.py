"""End to end: `cli small` against a warm server, next to the typical published client.

Run on demand: `uv run python benchmarks/bench_cli.py [--export small] [--runs 5]`.

Starts our server on a free port with a temporary cache, warms it (one full pass), then times,
alternating, median of `--runs` after a warm-up:

  sequential  one process, downloads one after another, each streamed through csv.DictReader
              (what most published solutions of the exercise do)
  cli         `python -m export_tally EXPORT` (worker processes, the regex fast path)

Both answers are compared, and the peak resident memory of the tool's process tree is sampled.
With `--stats-cost`, the baseline is plain `cli` instead and the contender `cli --stats`
(the statistics must cost at most 1.5x the counts).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psutil


@contextmanager
def server(cache_dir: str) -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "export_server", "--port", "0", "--cache-dir", cache_dir],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stderr is not None
    url = ""
    for line in process.stderr:
        if line.startswith("listening on "):
            url = line.split()[-1]
            break
    threading.Thread(target=process.stderr.read, daemon=True).start()
    try:
        yield url
    finally:
        process.terminate()
        process.wait()


def sequential_dictreader(url: str, export_id: str) -> dict[str, Any]:
    """The typical published approach: one download after another, csv.DictReader per row."""
    counts: Counter[tuple[str, str]] = Counter()
    with httpx.Client(timeout=60) as client:
        ids = client.get(f"{url}/api/export/{export_id}").json()["data"]["download_ids"]
        for download_id in ids:
            with client.stream("GET", f"{url}/api/export/{export_id}/{download_id}/data") as r:
                lines = (line + "\n" for line in r.iter_lines())
                for row in csv.DictReader(lines):
                    counts[row["patient_id"], row["event_type"]] += 1
    patients: dict[str, dict[str, int]] = {}
    totals: Counter[str] = Counter()
    for (patient, event_type), n in counts.items():
        patients.setdefault(patient, {})[event_type] = n
        totals[event_type] += n
    return {"patients": patients, "totals": dict(totals)}


def run_cli(url: str, export_id: str, extra: list[str]) -> tuple[dict[str, Any], int]:
    """The tool's answer and the peak RSS (bytes) of its process tree, sampled every 50 ms."""
    process = subprocess.Popen(
        [sys.executable, "-m", "export_tally", export_id, "--server", url, "--no-progress", *extra],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    peak = 0
    root = psutil.Process(process.pid)
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.append(process.stdout.read()))  # type: ignore[union-attr]
    reader.start()
    while process.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, max(p.memory_info().rss for p in tree))
        except psutil.Error:
            pass
        time.sleep(0.05)
    reader.join()
    if process.returncode != 0:
        raise SystemExit(f"cli failed with status {process.returncode}")
    return json.loads(output[0]), peak


def timed(fn: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--export", default="small")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cli-args", default="", help="extra arguments for cli, e.g. '-j 2'")
    parser.add_argument("--stats-cost", action="store_true", help="time cli --stats against cli")
    args = parser.parse_args()
    extra = args.cli_args.split()
    if args.stats_cost:
        stats_cost(args.export, args.runs, extra)
        return
    with tempfile.TemporaryDirectory() as cache, server(cache) as url:
        print(f"server {url}; warming the cache for {args.export} ...", flush=True)
        reference, _ = run_cli(url, args.export, extra)
        assert sequential_dictreader(url, args.export) == reference  # also the warm-up
        times: dict[str, list[float]] = {"sequential": [], "cli": []}
        peaks = []
        for _ in range(args.runs):
            seconds, answer = timed(lambda: sequential_dictreader(url, args.export))
            assert answer == reference
            times["sequential"].append(seconds)
            seconds, (answer, peak) = timed(lambda: run_cli(url, args.export, extra))
            assert answer == reference
            times["cli"].append(seconds)
            peaks.append(peak)
    rows = sum(reference["totals"].values())
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, seconds in medians.items():
        print(f"{name:>10}: {seconds:7.2f} s  {rows / seconds / 1e6:6.2f} M rows/s")
    print(f"     ratio: cli is {medians['sequential'] / medians['cli']:.2f}x the sequential client")
    print(f"  peak RSS: {max(peaks) / 2**20:.0f} MiB (largest process of the tool's tree)")


def stats_cost(export_id: str, runs: int, extra: list[str]) -> None:
    with tempfile.TemporaryDirectory() as cache, server(cache) as url:
        print(f"server {url}; warming the cache for {export_id} ...", flush=True)
        counts, _ = run_cli(url, export_id, extra)
        stats, _ = run_cli(url, export_id, [*extra, "--stats"])
        times: dict[str, list[float]] = {"cli": [], "cli --stats": []}
        for _ in range(runs):
            seconds, (answer, _) = timed(lambda: run_cli(url, export_id, extra))
            assert answer == counts
            times["cli"].append(seconds)
            seconds, (answer, _) = timed(lambda: run_cli(url, export_id, [*extra, "--stats"]))
            assert answer == stats
            times["cli --stats"].append(seconds)
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, seconds in medians.items():
        print(f"{name:>12}: {seconds:7.2f} s")
    print(f"       ratio: --stats costs {medians['cli --stats'] / medians['cli']:.2f}x the counts")


if __name__ == "__main__":
    main()
