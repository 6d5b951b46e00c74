"""End to end: the tool against a warm server, next to the typical published client.

    uv run python -m benchmarks.bench_cli [--export small] [--runs 5]   # the whole run
    uv run python -m benchmarks.bench_cli --export demo                 # start-up dominates
    uv run python -m benchmarks.bench_cli --bundled                     # the bundled server
    uv run python -m benchmarks.bench_cli --stats-cost                  # cli --stats against cli

Starts our server on a free port with a temporary cache, warms it (one full pass), then times,
alternating, median of `--runs` after a warm-up, each one a process of its own:

  sequential  one process, downloads one after another, each streamed through csv.DictReader
              (benchmarks/sequential_client.py: what most published solutions of the exercise do)
  cli         `python -m export_tally EXPORT --server URL`

Both answers are compared, and the peak resident memory of the tool's process tree is sampled.

With `--bundled`, `uv run cli demo` as a user runs it on a fresh machine: with the bundled server
(nothing answers on 127.0.0.1:8000; its cache, under a temporary XDG_CACHE_HOME, is warm), against
the same command with `--server` naming an already running server on the same cache.
With `--stats-cost`, the baseline is plain `cli` and the contender `cli --stats`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

from tests.support.processes import default_port_is_free

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def server(
    cache_dir: str, *flags: str, python: str = sys.executable, cwd: Path | None = None
) -> Iterator[str]:
    """Our server (or another checkout's: its `python`, run in `cwd`) on a free port with this
    cache directory; yields its URL once it listens, or once `--prewarm` is done when that is
    among the flags."""
    process = subprocess.Popen(
        [python, "-m", "export_server", "--port", "0", "--cache-dir", cache_dir, *flags],
        stderr=subprocess.PIPE, text=True, cwd=cwd,
    )  # fmt: skip
    assert process.stderr is not None
    url = ""
    for line in process.stderr:
        if line.startswith("listening on "):
            url = line.split()[-1]
        if url and ("--prewarm" not in flags or line.startswith("prewarm: done")):
            break
    threading.Thread(target=process.stderr.read, daemon=True).start()
    try:
        yield url
    finally:
        process.terminate()
        process.wait()


def run_json(command: list[str], env: dict[str, str] | None = None) -> tuple[dict[str, Any], int]:
    """A process's JSON answer and the peak RSS (bytes) of its process tree, sampled every 50 ms.
    Its stderr is dropped."""
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT, env=env
    )
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
        raise SystemExit(f"{' '.join(command)} failed with status {process.returncode}")
    return json.loads(output[0]), peak


def sequential(url: str, export_id: str) -> list[str]:
    return [sys.executable, "-m", "benchmarks.sequential_client", url, export_id]


def cli(url: str, export_id: str, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "export_tally", export_id, "--server", url, "--no-progress",
            *extra]  # fmt: skip


def alternate(
    contenders: dict[str, Callable[[], tuple[dict[str, Any], int]]], runs: int, agree: bool = True
) -> tuple[dict[str, float], dict[str, Any], int]:
    """Time each contender `runs` times, alternating, after one warm-up round in which every
    answer must agree (with `agree=False`, each contender need only keep giving its own);
    returns the median seconds of each, the first contender's answer, and the peak RSS seen."""
    answers = {name: run()[0] for name, run in contenders.items()}
    first = next(iter(answers.values()))
    if agree and any(answer != first for answer in answers.values()):
        raise SystemExit("the contenders disagree")
    times: dict[str, list[float]] = {name: [] for name in contenders}
    peak = 0
    for _ in range(runs):
        for name, run in contenders.items():
            started = time.perf_counter()
            answer, rss = run()
            times[name].append(time.perf_counter() - started)
            if answer != answers[name]:
                raise SystemExit(f"{name} gave another answer")
            peak = max(peak, rss)
    return {name: statistics.median(values) for name, values in times.items()}, first, peak


def end_to_end(export_id: str, runs: int, extra: list[str]) -> None:
    with tempfile.TemporaryDirectory() as cache, server(cache, "--prewarm", export_id) as url:
        print(f"server {url}, cache warm for {export_id}", flush=True)
        medians, answer, peak = alternate(
            {
                "sequential": lambda: run_json(sequential(url, export_id)),
                "cli": lambda: run_json(cli(url, export_id, extra)),
            },
            runs,
        )
    rows = sum(answer["totals"].values())
    for name, seconds in medians.items():
        print(f"{name:>10}: {seconds:7.2f} s  {rows / seconds / 1e6:6.2f} M rows/s")
    ratio = medians["sequential"] / medians["cli"]
    print(f"     ratio: cli takes {1 / ratio:.2f}x the sequential client's time ({ratio:.2f}x "
          "as fast)")  # fmt: skip
    print(f"  peak RSS: {peak / 2**20:.0f} MiB (largest process of the tool's tree)")


def bundled(runs: int) -> None:
    """`uv run cli demo`: the bundled server on a warm cache, against a running server."""
    if not default_port_is_free():
        raise SystemExit("something listens on 127.0.0.1:8000: the bundled server would not start")
    uv = shutil.which("uv")
    command = [uv, "run", "cli"] if uv else [sys.executable, "-m", "export_tally"]
    with tempfile.TemporaryDirectory() as home:
        env = {k: v for k, v in os.environ.items() if k not in ("EXPORT_SERVER_URL",
               "EXPORT_TALLY_NO_EMBEDDED")} | {"XDG_CACHE_HOME": home}  # fmt: skip
        cache = str(Path(home) / "export-tally" / "bodies")
        with server(cache, "--prewarm", "demo") as url:
            shown = "uv run cli" if uv else "python -m export_tally"
            print(f"`{shown} demo`; server {url}, cache {cache} warm", flush=True)
            medians, _, _ = alternate(
                {
                    "running server": lambda: run_json([*command, "demo", "--server", url], env),
                    "bundled server": lambda: run_json([*command, "demo"], env),
                },
                runs,
            )
    for name, seconds in medians.items():
        print(f"{name:>15}: {seconds:6.2f} s")
    ratio = medians["bundled server"] / medians["running server"]
    print(f"          ratio: with the bundled server, {ratio:.2f}x the time")


def stats_cost(export_id: str, runs: int, extra: list[str]) -> None:
    with tempfile.TemporaryDirectory() as cache, server(cache, "--prewarm", export_id) as url:
        print(f"server {url}, cache warm for {export_id}", flush=True)
        plain = cli(url, export_id, extra)
        medians, _, _ = alternate(
            {
                "cli": lambda: run_json(plain),
                "cli --stats": lambda: run_json([*plain, "--stats"]),
            },
            runs,
            agree=False,  # counts and statistics are different answers
        )
    for name, seconds in medians.items():
        print(f"{name:>12}: {seconds:7.2f} s")
    print(f"       ratio: --stats costs {medians['cli --stats'] / medians['cli']:.2f}x the counts")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--export", default="small")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cli-args", default="", help="extra arguments for cli, e.g. '-j 2'")
    parser.add_argument("--bundled", action="store_true", help="the bundled server's cost")
    parser.add_argument("--stats-cost", action="store_true", help="time cli --stats against cli")
    args = parser.parse_args()
    extra = args.cli_args.split()
    if args.bundled:
        bundled(args.runs)
    elif args.stats_cost:
        stats_cost(args.export, args.runs, extra)
    else:
        end_to_end(args.export, args.runs, extra)


if __name__ == "__main__":
    main()
