"""In-process generation on one core: the fast generator against the oracle.

The oracle (tests/support/oracle.py) is the per-row algorithm of docs/server.md, written literally.

    uv run python -m benchmarks.bench_generate [--rows N] [--runs K]

Prints rows per second, the median of K runs after a warm-up, for one download of each export, and
the ratio of the fast generator to the oracle measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Iterable

from export_server.dataset import EXPORTS, Download, downloads_of
from export_server.generate import generate_chunks
from tests.support.oracle import oracle_lines


def oracle_rows(download: Download, rows: int) -> int:
    """Generate `rows` rows with the oracle; returns how many were made."""
    return sum(1 for _ in oracle_lines(download, rows)) - 1


def fast_rows(download: Download, rows: int) -> int:
    """Generate at least `rows` rows (whole chunks) with the fast generator; returns how many."""
    made = 0
    for chunk in generate_chunks(download):
        made += chunk.count(b"\n")
        if made > rows:
            break
    return made - 1


def rate(make: Callable[[], int], runs: int) -> float:
    """Rows per second: the median of `runs` timed calls, after one untimed warm-up call."""
    make()
    rates = []
    for _ in range(runs):
        started = time.perf_counter()
        made = make()
        rates.append(made / (time.perf_counter() - started))
    return statistics.median(rates)


def compare(downloads: Iterable[Download], rows: int, runs: int) -> list[tuple[str, float, float]]:
    """(label, oracle rows/s, fast rows/s) for each download."""
    results = []
    for download in downloads:
        n = min(rows, download.rows)
        oracle = rate(lambda: oracle_rows(download, n), runs)  # noqa: B023 (called at once)
        fast = rate(lambda: fast_rows(download, n), runs)  # noqa: B023
        results.append((f"{download.export.export_id}[0]", oracle, fast))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000, help="rows per run (default 300000)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs (default 5)")
    args = parser.parse_args()
    print(f"in-process, one core, median of {args.runs} runs of {args.rows:,} rows")
    print(f"{'download':10} {'oracle rows/s':>14} {'fast rows/s':>14} {'ratio':>7}")
    downloads = [downloads_of(export_id)[0] for export_id in EXPORTS]
    for label, oracle, fast in compare(downloads, args.rows, args.runs):
        print(f"{label:10} {oracle:14,.0f} {fast:14,.0f} {fast / oracle:6.2f}x")


if __name__ == "__main__":
    main()
