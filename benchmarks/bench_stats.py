"""How much `--stats` costs next to plain counts: StatsParser vs CountingParser on the same bytes.

Run on demand: `uv run python -m benchmarks.bench_stats [--shape small|large] [--lines N]`.
The body is bench_parse's (the server's generator, one download with every patient of the
export's pool, rows in time order), cut into 64 KiB chunks (what fetch feeds); each parser is
timed interleaved with the other, median of `--repeat` rounds after a warm-up, in CPU time of
this process (`--clock wall` for wall time). Target: stats / counts <= 1.5x on both shapes.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from benchmarks.bench_parse import CLOCKS, add_options, make_body, make_chunks, median_seconds
from export_tally.core.counts.parser import CountingParser
from export_tally.core.csv.blocks import BlockParser
from export_tally.core.stats.parser import StatsParser


def total(parser: BlockParser[Any], chunks: list[bytes]) -> int:
    for chunk in chunks:
        parser.feed(chunk)
    result = parser.finish()
    if result.rows != parser.plain_rows:
        raise SystemExit(
            f"{type(parser).__name__}: only {parser.plain_rows} of {result.rows} rows took the fast path"
        )
    return result.rows


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_options(options, lines=1_000_000)
    args = options.parse_args()

    body = make_body(args.shape, args.lines)
    chunks = make_chunks(body)
    print(
        f"{args.lines:,} rows ({args.shape}), {len(body) / 2**20:.1f} MiB in {len(chunks)} "
        f"chunks, {args.clock} time"
    )
    runs: dict[str, Callable[[], int]] = {
        "counts": lambda: total(CountingParser(), chunks),
        "stats": lambda: total(StatsParser(), chunks),
    }
    for name, run in runs.items():
        if (rows := run()) != args.lines:
            raise SystemExit(f"{name} found {rows} rows, not {args.lines}")
    seconds = median_seconds(runs, args.repeat, CLOCKS[args.clock])
    for name, elapsed in seconds.items():
        print(f"{name:>7}: {elapsed:7.3f} s  {args.lines / elapsed / 1e6:6.2f} M rows/s")
    print(f"stats / counts: {seconds['stats'] / seconds['counts']:.2f}x time (target <= 1.5x)")


if __name__ == "__main__":
    main()
