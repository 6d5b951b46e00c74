"""How much `--stats` costs next to plain counts: StatsParser vs CountingParser on the same bytes.

Run on demand: `uv run python -m benchmarks.bench_stats [--lines N] [--shape small|large]`.
Generates a body shaped like the server's exports (rows in time order, a step of 3 s (small) or
0.3 s (large) with jitter, `isoformat` timestamps that drop `.ffffff` when it is zero, values
drawn like the server's), cuts it into 256 KiB chunks (what fetch feeds), and times each parser
(median of 5 interleaved runs after a warm-up). Target: stats / counts <= 1.5x.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from benchmarks.bench_parse import median_seconds
from export_tally.core.parse import CountingParser
from export_tally.core.stats_parse import StatsParser

CHUNK_BYTES = 256 * 1024
EVENTS = {  # mu, sigma, lo, hi, as the server draws them
    "heart_rate": (75, 15, 30, 200),
    "spo2": (97, 2, 70, 100),
    "bp_sys": (120, 20, 60, 250),
    "bp_dia": (80, 15, 30, 150),
}
SHAPES = {  # patients, event types, step in microseconds
    "small": (tuple(f"S{i:03d}" for i in range(1, 7)), ("heart_rate", "spo2"), 3_000_000),
    "large": (tuple(f"L{i:03d}" for i in range(1, 21)), tuple(EVENTS), 300_000),
}


def make_body(lines: int, shape: str, rng: random.Random) -> bytes:
    """A header and `lines` rows like `S003,2025-08-26T00:00:02.760570Z,spo2,97`, in time order."""
    patients, event_types, step = SHAPES[shape]
    start = datetime(2025, 8, 26, tzinfo=UTC)
    out = ["patient_id,event_time,event_type,value\n"]
    for i in range(lines):
        moment = start + timedelta(microseconds=i * step + rng.randrange(step))
        event_type = rng.choice(event_types)
        mu, sigma, lo, hi = EVENTS[event_type]
        value = min(max(int(rng.gauss(mu, sigma)), lo), hi)
        stamp = moment.isoformat().replace("+00:00", "Z")
        out.append(f"{rng.choice(patients)},{stamp},{event_type},{value}\n")
    return "".join(out).encode("utf-8")


def count(chunks: list[bytes]) -> int:
    parser = CountingParser()
    for chunk in chunks:
        parser.feed(chunk)
    return parser.finish().aggregate.total


def stats(chunks: list[bytes]) -> int:
    parser = StatsParser()
    for chunk in chunks:
        parser.feed(chunk)
    return parser.finish().aggregate.total


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    options.add_argument("--lines", type=int, default=1_000_000)
    options.add_argument("--shape", choices=sorted(SHAPES), default="small")
    options.add_argument("--repeat", type=int, default=5)
    args = options.parse_args()

    body = make_body(args.lines, args.shape, random.Random(20250826))
    chunks = [body[i : i + CHUNK_BYTES] for i in range(0, len(body), CHUNK_BYTES)]
    print(
        f"{args.lines:,} rows ({args.shape}), {len(body) / 2**20:.1f} MiB in {len(chunks)} chunks"
    )

    runs: dict[str, Callable[[], int]] = {
        "counts": lambda: count(chunks),
        "stats": lambda: stats(chunks),
    }
    for name, run in runs.items():
        if run() != args.lines:
            raise SystemExit(f"{name} found {run()} rows, not {args.lines}")
    seconds = median_seconds(runs, args.repeat)
    for name, elapsed in seconds.items():
        print(f"{name:>7}: {elapsed:7.3f} s  {args.lines / elapsed / 1e6:6.2f} M rows/s")
    print(f"stats / counts: {seconds['stats'] / seconds['counts']:.2f}x time (target <= 1.5x)")


if __name__ == "__main__":
    main()
