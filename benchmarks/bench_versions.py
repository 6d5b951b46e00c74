"""This checkout against another one (an earlier commit in a git worktree), end to end.

    git worktree add ../baseline COMMIT && (cd ../baseline && uv sync)
    uv run python -m benchmarks.bench_versions ../baseline --export small           # warm server
    uv run python -m benchmarks.bench_versions ../baseline --export small --cold    # fresh cache
    uv run python -m benchmarks.bench_versions ../baseline --export large --cache-dir DIR

Warm: one server of this checkout, its cache warmed first, serves both tools; each version's
`python -m export_tally EXPORT --server URL` runs in its own environment (`CHECKOUT/.venv`).
Cold: each run starts that version's own server on an empty cache and times its tool while the
server generates the bodies (the whole cold path: generation, serving and counting).
Runs alternate, median of `--runs`; both answers must agree. Prints the medians and the ratio
baseline / this checkout (above 1: this checkout is faster).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.bench_cli import server

ROOT = Path(__file__).resolve().parents[1]


def python_of(checkout: Path) -> str:
    python = checkout / ".venv" / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"{checkout} has no .venv: run `uv sync` there first")
    return str(python)


def timed_run(checkout: Path, url: str, export_id: str) -> tuple[float, object]:
    """Seconds the tool of `checkout` took, and its answer."""
    command = [python_of(checkout), "-m", "export_tally", export_id, "--server", url,
               "--no-progress"]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, cwd=checkout, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{checkout}: exit {done.returncode}: {done.stderr.strip()[-300:]}")
    return seconds, json.loads(done.stdout)


def cold_run(checkout: Path, export_id: str) -> tuple[float, object]:
    """That version's server on an empty cache, and its tool against it."""
    with (
        tempfile.TemporaryDirectory() as cache,
        server(cache, python=python_of(checkout), cwd=checkout) as url,
    ):
        return timed_run(checkout, url, export_id)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("baseline", type=Path, help="the other checkout (a git worktree)")
    parser.add_argument("--export", default="small")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="a fresh server and cache per run")
    parser.add_argument(
        "--cache-dir", help="warm: the server's cache (default: a new one, warmed first)"
    )
    args = parser.parse_args()
    checkouts = {"baseline": args.baseline.resolve(), "this": ROOT}
    times: dict[str, list[float]] = {name: [] for name in checkouts}
    answers: list[object] = []

    def round_of_runs(url: str | None) -> None:
        for name, checkout in checkouts.items():
            if url is None:
                seconds, answer = cold_run(checkout, args.export)
            else:
                seconds, answer = timed_run(checkout, url, args.export)
            times[name].append(seconds)
            answers.append(answer)
            if answer != answers[0]:
                raise SystemExit(f"{name} gave another answer")

    if args.cold:
        print(f"{args.export}, cold: each run its version's server on an empty cache", flush=True)
        for _ in range(args.runs):
            round_of_runs(None)
    else:
        with (
            tempfile.TemporaryDirectory() as temporary,
            server(args.cache_dir or temporary, "--prewarm", args.export) as url,
        ):
            print(f"{args.export}, warm server {url}", flush=True)
            round_of_runs(url)  # warm-up: both answers must agree
            times = {name: [] for name in checkouts}
            for _ in range(args.runs):
                round_of_runs(url)
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, seconds in medians.items():
        print(f"{name:>9}: {seconds:7.2f} s  (runs: {', '.join(f'{t:.2f}' for t in times[name])})")
    print(f"    ratio: baseline / this = {medians['baseline'] / medians['this']:.2f}x")


if __name__ == "__main__":
    main()
