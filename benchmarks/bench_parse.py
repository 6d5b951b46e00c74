"""How fast the counting core is, next to counting with the stdlib csv module.

Run on demand: `uv run python -m benchmarks.bench_parse [--shape small|large] [--lines N]`.

The body is made in-process by the server's own generator (`export_server.generate`), shaped like
one download of the export of that name but with every patient of its pool: `small` is 6 patients
x 2 event types, `large` 20 patients x 4 event types (80 keys). It is cut into 64 KiB chunks
(what fetch feeds the parser), and each run below is timed, interleaved with the others, median
of `--repeat` rounds after a warm-up, in CPU time of this process (`--clock wall` for wall time):

  dictreader  csv.DictReader over the already-decoded text, counting (patient_id, event_type)
  reader      csv.reader over the already-decoded text, the same count by column index
  ours        CountingParser fed the byte chunks (UTF-8, field count and key checks on)

The baselines get their text decoded for free and check nothing, so the ratios are conservative.
Targets: ours >= 7x dictreader and >= 3x reader on a fast machine (dictreader >= 0.6 M rows/s),
>= 6x and >= 2.6x on a slower one.
"""

from __future__ import annotations

import argparse
import csv
import io
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import timedelta

from export_server.dataset import EXPORTS, Download
from export_server.generate import generate_chunks
from export_tally.core.counts.parser import CountingParser

CHUNK_BYTES = 64 * 1024
SHAPES = ("small", "large")
FAST_DICTREADER = 0.6e6  # rows/s: at or above, the machine is "fast" for the targets
TARGETS = {True: (7.0, 3.0), False: (6.0, 2.6)}  # fast machine?: (x dictreader, x reader)

Clock = Callable[[], float]
CLOCKS: dict[str, Clock] = {"cpu": time.process_time, "wall": time.perf_counter}


def make_body(shape: str, lines: int) -> bytes:
    """`lines` rows of the export `shape`, as the server generates them, all its patients."""
    spec = EXPORTS[shape]
    end = spec.start + timedelta(microseconds=lines * spec.step_us)
    download = Download(spec, uuid.UUID(int=20250826), lines, spec.pool, spec.start, end)
    return b"".join(generate_chunks(download))


def make_chunks(body: bytes) -> list[bytes]:
    return [body[i : i + CHUNK_BYTES] for i in range(0, len(body), CHUNK_BYTES)]


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


def median_seconds(
    runs: Mapping[str, Callable[[], object]], repeat: int, clock: Clock = time.process_time
) -> dict[str, float]:
    """Median time of each run; rounds interleave the runs, so load drift hits all alike."""
    for run in runs.values():
        run()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            start = clock()
            run()
            times[name].append(clock() - start)
    return {name: statistics.median(seconds) for name, seconds in times.items()}


def add_options(options: argparse.ArgumentParser, lines: int) -> None:
    options.add_argument("--shape", choices=SHAPES, default="small")
    options.add_argument("--lines", type=int, default=lines)
    options.add_argument("--repeat", type=int, default=5)
    options.add_argument("--clock", choices=sorted(CLOCKS), default="cpu")


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_options(options, lines=1_000_000)
    args = options.parse_args()

    body = make_body(args.shape, args.lines)
    chunks = make_chunks(body)
    text = body.decode("utf-8")
    print(
        f"{args.lines:,} rows ({args.shape}), {len(body) / 2**20:.1f} MiB in {len(chunks)} "
        f"chunks, {args.clock} time"
    )

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
    for name, seconds in median_seconds(runs, args.repeat, CLOCKS[args.clock]).items():
        rates[name] = args.lines / seconds
        print(f"{name:>10}: {seconds:7.3f} s  {rates[name] / 1e6:6.2f} M rows/s")
    fast = rates["dictreader"] >= FAST_DICTREADER
    versus_dictreader, versus_reader = TARGETS[fast]
    machine = "fast" if fast else "slow"
    print(
        f"ours / dictreader: {rates['ours'] / rates['dictreader']:.2f}x "
        f"(target >= {versus_dictreader}x on a {machine} machine)"
    )
    print(
        f"ours / reader:     {rates['ours'] / rates['reader']:.2f}x "
        f"(target >= {versus_reader}x on a {machine} machine)"
    )


if __name__ == "__main__":
    main()
