"""End to end over FHIR Bulk Data: `cli --fhir URL/fhir EXPORT` beside `cli EXPORT`, warm.

    uv run python -m benchmarks.bench_fhir_cli [--export small] [--runs 5] [--cli-args '-j 2']

Starts our server on a free port with a temporary cache, warm for the export (`--prewarm`), then
times, alternating, median of `--runs` after a warm-up round, each run a process of its own:

  cli        `python -m export_tally EXPORT --server URL` (the CSV export API)
  cli --fhir `python -m export_tally --fhir URL/fhir EXPORT --key text` (kick-off, polling, the
             NDJSON files, DELETE; each Observation keyed by its code.text, the CSV event type)

The two answers must be the same JSON (else it stops). Prints each one's time and rows/s and
the ratio. NDJSON is about ten times CSV's bytes, and the server converts it while it serves it:
the ratio is the whole path's, not the NDJSON core's (benchmarks/bench_ndjson.py has that).
"""

from __future__ import annotations

import argparse
import sys
import tempfile

from benchmarks.bench_cli import alternate, cli, run_json, server


def fhir_cli(url: str, export_id: str, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "export_tally", "--fhir", f"{url}/fhir", export_id,
            "--key", "text", "--no-progress", "--no-checkpoint", *extra]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--export", default="small")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cli-args", default="", help="extra arguments for both, e.g. '-j 2'")
    args = parser.parse_args()
    extra = args.cli_args.split()
    export_id = args.export
    with tempfile.TemporaryDirectory() as cache, server(cache, "--prewarm", export_id) as url:
        print(f"server {url}, cache warm for {export_id}", flush=True)
        medians, answer, peak = alternate(
            {
                "cli": lambda: run_json(cli(url, export_id, extra)),
                "cli --fhir": lambda: run_json(fhir_cli(url, export_id, extra)),
            },
            args.runs,
        )
    rows = sum(answer["totals"].values())
    for name, seconds in medians.items():
        print(f"{name:>10}: {seconds:7.2f} s  {rows / seconds / 1e6:6.2f} M rows/s")
    ratio = medians["cli --fhir"] / medians["cli"]
    print(f"     ratio: cli --fhir takes {ratio:.2f}x the time of cli (same answer)")
    print(f"  peak RSS: {peak / 2**20:.0f} MiB (largest process of either tool's tree)")


if __name__ == "__main__":
    main()
