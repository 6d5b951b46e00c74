"""End to end against the peers a data engineer would reach for: DuckDB and Polars.

    uv run --with duckdb --with polars python -m benchmarks.bench_peers [--export small] [--runs 5]
    uv run --with duckdb --with polars python -m benchmarks.bench_peers --export large --dir /var/tmp

Starts our server on a free port with a temporary cache, warms it (`--prewarm`), then times,
alternating, median of `--runs` after a warm-up round, each pipeline a process of its own:

  floor        the transfer floor: every download fetched with curl to /dev/null, one per core
               at a time (no Python, no parsing)
  fetch        the peers' fetch alone: `urllib`, one thread per core, 1 MiB copies, to `--dir`
  polars       fetch, then Polars (`scan_csv` of the files, `group_by().len()`)
  duckdb       fetch, then DuckDB (`read_csv` of the files, `group by`)
  uv run cli   the tool as a user runs it
  cli          the tool as the installed script (`.venv/bin/cli`)

The peers' answers must equal the tool's (checked in the warm-up round). The files go to `--dir`
(default: /dev/shm, a tmpfs, when it exists; give a disk folder for `large` if memory is short).
Printed: each median, the tool's time as a multiple of the best peer's and of the transfer floor
(the distance left to what this machine can do), and the tool's peak RSS per process.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from benchmarks.bench_cli import server

ROOT = Path(__file__).resolve().parents[1]
CORES = os.cpu_count() or 1


def run(command: list[str]) -> tuple[str, int]:
    """A process's stdout and the largest RSS (bytes) any one process of its tree reached,
    sampled every 20 ms. Its stderr is dropped; a failure ends the benchmark."""
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT
    )
    root = psutil.Process(process.pid)
    peak = 0
    while process.poll() is None:
        try:
            for p in [root, *root.children(recursive=True)]:
                if p.name() not in ("uv", "curl", "xargs", "sh"):
                    peak = max(peak, p.memory_info().rss)
        except psutil.Error:
            pass
        time.sleep(0.02)
    output = process.stdout.read() if process.stdout else ""
    if process.returncode != 0:
        raise SystemExit(f"{shlex.join(command)} failed with status {process.returncode}")
    return output, peak


def download_urls(url: str, export_id: str) -> list[str]:
    with urllib.request.urlopen(f"{url}/api/export/{export_id}") as response:
        ids = json.load(response)["data"]["download_ids"]
    return [f"{url}/api/export/{export_id}/{i}/data" for i in ids]


def pipelines(url: str, export_id: str, folder: str) -> dict[str, list[str]]:
    urls = " ".join(download_urls(url, export_id))
    floor = f"printf '%s\\n' {urls} | xargs -P {CORES} -n 1 curl -sf -o /dev/null"
    peer = [sys.executable, "-m", "benchmarks.peer_pipeline"]
    uv = shutil.which("uv")
    script = Path(sys.prefix) / "bin" / "cli"
    installed = [str(script)] if script.exists() else [sys.executable, "-m", "export_tally"]
    tool = [export_id, "--server", url, "--no-progress"]
    commands = {
        "floor": ["sh", "-c", floor],
        "fetch": [*peer, "fetch", url, export_id, folder],
        "polars": [*peer, "polars", url, export_id, folder],
        "duckdb": [*peer, "duckdb", url, export_id, folder],
        "cli": [*installed, *tool],
    }
    if uv:
        commands["uv run cli"] = [uv, "run", "--no-sync", "cli", *tool]
    return commands


def warm_up(commands: dict[str, list[str]]) -> dict[str, Any]:
    """One run of each; the peers' answers must equal the tool's. Returns the tool's answer."""
    answers = {name: run(command)[0] for name, command in commands.items()}
    ours: dict[str, Any] = json.loads(answers["cli"])
    for name in ("polars", "duckdb", "uv run cli"):
        if name in answers and json.loads(answers[name]) != ours:
            raise SystemExit(f"{name} disagrees with the tool")
    return ours


def alternate(commands: dict[str, list[str]], runs: int) -> tuple[dict[str, float], int]:
    """Median seconds of each pipeline over `runs` alternating rounds, and the tool's peak RSS."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    peak = 0
    for _ in range(runs):
        for name, command in commands.items():
            started = time.perf_counter()
            _, rss = run(command)
            times[name].append(time.perf_counter() - started)
            if name in ("cli", "uv run cli"):
                peak = max(peak, rss)
    return {name: statistics.median(values) for name, values in times.items()}, peak


def report(medians: dict[str, float], rows: int, peak: int, show: Callable[[str], None]) -> None:
    for name, seconds in medians.items():
        show(f"{name:>11}: {seconds:7.2f} s  {rows / seconds / 1e6:7.2f} M rows/s")
    best_name = min(("polars", "duckdb"), key=lambda n: medians[n])
    best = medians[best_name]
    for tool in ("cli", "uv run cli"):
        if tool in medians:
            show(f"{tool:>11}: {medians[tool] / best:.2f}x the best peer's time ({best_name}), "
                 f"{medians[tool] / medians['floor']:.1f}x the transfer floor")  # fmt: skip
    show(f"   peak RSS: {peak / 2**20:.0f} MiB (largest process of the tool's tree)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--export", default="small")
    parser.add_argument("--runs", type=int, default=5)
    default_dir = "/dev/shm" if Path("/dev/shm").is_dir() else tempfile.gettempdir()
    parser.add_argument("--dir", default=default_dir, help="where the peers put the files")
    args = parser.parse_args()
    folder = str(Path(args.dir) / f"bench-peers-{os.getpid()}")
    with tempfile.TemporaryDirectory() as cache, server(cache, "--prewarm", args.export) as url:
        print(f"server {url}, cache warm for {args.export}; {CORES} cores", flush=True)
        commands = pipelines(url, args.export, folder)
        answer = warm_up(commands)
        medians, peak = alternate(commands, args.runs)
    report(medians, sum(answer["totals"].values()), peak, print)


if __name__ == "__main__":
    main()
