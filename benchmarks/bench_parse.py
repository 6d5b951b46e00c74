"""How fast the chunked counter is, next to counting with the stdlib csv module.

Run on demand: `uv run python benchmarks/bench_parse.py [--lines N]`. Generates a realistic body
in memory, cuts it into 64 KiB - 1 MiB chunks, and times (median of 5 interleaved runs after a
warm-up):

  dictreader  csv.DictReader over the already-decoded text, counting (patient_id, event_type)
  reader      csv.reader over the already-decoded text, the same count by column index
  ours        CountingParser fed the byte chunks (UTF-8 check, field count and key checks on)

The baselines get their text decoded for free and check nothing, so the ratios are conservative.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable, Mapping

from export_tally.core.parse import CountingParser

PATIENTS = ("P001", "P002", "P003", "P004")
EVENT_TYPES = {
    "P001": ("bp_sys", "bp_dia", "hr", "spo2"),
    "P002": ("hr", "spo2"),
    "P003": ("bp_sys", "bp_dia", "hr"),
    "P004": ("hr", "spo2", "temp"),
}


def make_body(lines: int, rng: random.Random) -> bytes:
    """A header and `lines` rows like `P003,2025-08-26T00:00:07.123456Z,bp_sys,118`."""
    out = ["patient_id,event_time,event_type,value\n"]
    for i in range(lines):
        patient = rng.choice(PATIENTS)
        seconds = i // 8
        stamp = f"2025-08-26T{seconds // 3600 % 24:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        if rng.random() < 0.8:  # some timestamps have no fraction
            stamp += f".{rng.randrange(1_000_000):06d}"
        event_type = rng.choice(EVENT_TYPES[patient])
        out.append(f"{patient},{stamp}Z,{event_type},{rng.randrange(40, 200)}\n")
    return "".join(out).encode("utf-8")


def make_chunks(body: bytes, rng: random.Random) -> list[bytes]:
    chunks = []
    start = 0
    while start < len(body):
        size = rng.randrange(64 * 1024, 1024 * 1024 + 1)
        chunks.append(body[start : start + size])
        start += size
    return chunks


def count_dictreader(text: str) -> Counter[tuple[str, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    for row in csv.DictReader(io.StringIO(text, newline="")):
        counts[row["patient_id"], row["event_type"]] += 1
    return counts


def count_reader(text: str) -> Counter[tuple[str, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    rows = csv.reader(io.StringIO(text, newline=""))
    next(rows)
    for row in rows:
        counts[row[0], row[2]] += 1
    return counts


def count_ours(chunks: list[bytes]) -> Counter[tuple[str, str]]:
    parser = CountingParser()
    for chunk in chunks:
        parser.feed(chunk)
    return Counter(parser.finish().aggregate.counts)


def median_seconds(runs: Mapping[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Median time of each run; rounds interleave the runs, so load drift hits all alike."""
    for run in runs.values():
        run()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(seconds) for name, seconds in times.items()}


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    options.add_argument("--lines", type=int, default=1_500_000)
    options.add_argument("--repeat", type=int, default=5)
    args = options.parse_args()

    rng = random.Random(20250826)
    body = make_body(args.lines, rng)
    chunks = make_chunks(body, rng)
    text = body.decode("utf-8")
    print(f"{args.lines:,} rows, {len(body) / 2**20:.1f} MiB in {len(chunks)} chunks")

    expected = count_dictreader(text)
    runs: dict[str, Callable[[], Counter[tuple[str, str]]]] = {
        "dictreader": lambda: count_dictreader(text),
        "reader": lambda: count_reader(text),
        "ours": lambda: count_ours(chunks),
    }
    for name, run in runs.items():
        if run() != expected:
            raise SystemExit(f"{name} counted differently")
    rates = {}
    for name, seconds in median_seconds(runs, args.repeat).items():
        rates[name] = args.lines / seconds
        print(f"{name:>10}: {seconds:7.3f} s  {rates[name] / 1e6:6.2f} M rows/s")
    print(f"ours / dictreader: {rates['ours'] / rates['dictreader']:.2f}x (target >= 3.5x)")
    print(f"ours / reader:     {rates['ours'] / rates['reader']:.2f}x (target >= 1.4x)")


if __name__ == "__main__":
    main()
