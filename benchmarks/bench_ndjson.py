"""How fast the NDJSON counting core is, next to a plain `json.loads`-per-line counter.

Run on demand: `uv run python -m benchmarks.bench_ndjson [--shape server|synthea|both]
[--lines N] [--repeat R] [--clock cpu|wall] [--libraries] [--cuts]`.

Two shapes of body:

  server   Observations as the mock server's FHIR routes make them from an export's CSV rows
           (`make_observations`: id, status final, category vital-signs, a LOINC coding and
           `code.text` = the event type, subject Patient/<id>, effectiveDateTime and
           meta.lastUpdated from event_time, valueQuantity in UCUM units), from the rows of
           the `large` export made by the server's own generator
  synthea  the real-world sample in tests/data/fhir/synthea-100/ (Synthea's Observations and
           Patients, repeated up to `--lines`)

Each is cut into 64 KiB chunks (what a download feeds the parser) and timed, interleaved, median
of `--repeat` rounds after a warm-up, in CPU time of this process:

  json.loads  a plain counter: every line decoded whole by `json.loads`, its patient and code
              read from the dicts (the baseline; it checks nothing the rules do not need)
  ours        NdjsonCountingParser fed the chunks (key mode "code"; every rule checked), asked
              for the types the CLI would ask for: `--type Observation` (its default) on the
              server's shape, `--type Observation --type Patient` on the sample's

`--libraries` adds the candidates docs/ndjson.md compares: orjson's `loads` per line with the
same dict reads, and msgspec's untyped `decode` per line (both need installing by hand, e.g.
`uv run --with orjson python -m benchmarks.bench_ndjson --libraries`; msgspec is a dependency).
`--cuts` also times cutting the chunks into lines alone: `bytes.split`, which looks at every
byte in a plain loop, against `BytesIO.readlines`, which finds each LF with `memchr` (what the
core does).

The machine's load moves the times, not much the ratios: the ratio is what to read. Target:
ours >= 5x json.loads on both shapes.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any

from benchmarks.bench_parse import CLOCKS, make_body, make_chunks, median_seconds
from export_tally.core.ndjson import NdjsonCountingParser

SYNTHEA = Path(__file__).parent.parent / "tests" / "data" / "fhir" / "synthea-100"
TARGET = 5.0
LOINC = {
    "heart_rate": ("8867-4", "Heart rate", "/min", "beats/minute"),
    "spo2": ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%", "%"),
    "bp_sys": ("8480-6", "Systolic blood pressure", "mm[Hg]", "mmHg"),
    "bp_dia": ("8462-4", "Diastolic blood pressure", "mm[Hg]", "mmHg"),
}
CATEGORY = [
    {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": "vital-signs",
                "display": "Vital Signs",
            }
        ]
    }
]

Counts = Counter[tuple[str, str]]


def make_observations(csv_body: bytes) -> bytes:
    """The NDJSON Observations the issue's mapping makes of an export CSV's rows."""
    lines = csv_body.decode("utf-8").splitlines()
    out = []
    for row_number, line in enumerate(lines[1:], start=1):
        patient, event_time, event_type, value = line.split(",")
        code, display, ucum, unit = LOINC.get(
            event_type, (event_type, event_type, "1", "1")
        )  # no LOINC code: the project's own system, as the mapping says
        system = "http://loinc.org" if event_type in LOINC else "urn:export-tally:event-type"
        resource = {
            "resourceType": "Observation",
            "id": f"large-0-{row_number}",
            "meta": {"lastUpdated": event_time},
            "status": "final",
            "category": CATEGORY,
            "code": {
                "coding": [{"system": system, "code": code, "display": display}],
                "text": event_type,
            },
            "subject": {"reference": f"Patient/{patient}"},
            "effectiveDateTime": event_time,
            "valueQuantity": {
                "value": int(value),
                "unit": unit,
                "system": "http://unitsofmeasure.org",
                "code": ucum,
            },
        }
        out.append(json.dumps(resource, separators=(",", ":")))
    return ("\n".join(out) + "\n").encode("utf-8")


def synthea_body(lines: int) -> bytes:
    """The sample's files, one after the other, repeated until `lines` lines (at least once)."""
    sample = b"".join(path.read_bytes() for path in sorted(SYNTHEA.glob("*.ndjson")))
    repeats = max(1, -(-lines // sample.count(b"\n")))
    return sample * repeats


def key_of(resource: dict[str, Any]) -> tuple[str, str]:
    """The baselines' reading of a decoded resource: (patient, code), as ours counts it."""
    if resource["resourceType"] == "Patient":
        return resource["id"], "Patient"
    return resource["subject"]["reference"][len("Patient/") :], resource["code"]["coding"][0][
        "code"
    ]


def count_with(loads: Callable[[bytes], Any], body: bytes) -> Counts:
    """A plain per-line counter: every line decoded whole by `loads`."""
    counts: Counts = Counter()
    for line in body.split(b"\n"):
        if line.strip():
            counts[key_of(loads(line))] += 1
    return counts


def count_ours(chunks: list[bytes], types: frozenset[str]) -> Counts:
    parser = NdjsonCountingParser("code", types)
    for chunk in chunks:
        parser.feed(chunk)
    return Counter(parser.finish().aggregate.counts)


def library_runs(body: bytes) -> dict[str, Callable[[], Counts]]:
    import msgspec

    runs: dict[str, Callable[[], Counts]] = {
        "msgspec any": lambda: count_with(msgspec.json.decode, body)
    }
    try:
        import orjson  # type: ignore[import-not-found]  # not a dependency: compared only
    except ImportError:
        print("(orjson is not installed: `uv run --with orjson ...` adds it)")
    else:
        runs["orjson"] = lambda: count_with(orjson.loads, body)
    return runs


def cut_runs(chunks: list[bytes]) -> dict[str, Callable[[], object]]:
    """Cutting every chunk into lines, the two ways."""
    return {
        "bytes.split": lambda: [chunk.split(b"\n") for chunk in chunks],
        "readlines": lambda: [BytesIO(chunk).readlines() for chunk in chunks],
    }


def bench_cuts(chunks: list[bytes], lines: int, args: argparse.Namespace) -> None:
    seconds = median_seconds(cut_runs(chunks), args.repeat, CLOCKS[args.clock])
    for run_name, taken in seconds.items():
        ratio = seconds["bytes.split"] / taken
        print(
            f"  cut {run_name:>12}: {taken / lines * 1e9:6.0f} ns a line  {ratio:5.2f}x bytes.split"
        )


def bench(name: str, body: bytes, types: frozenset[str], args: argparse.Namespace) -> float:
    chunks = make_chunks(body)
    lines = body.count(b"\n")
    print(f"{name}: {lines:,} lines, {len(body) / 2**20:.1f} MiB in {len(chunks)} chunks")
    runs: dict[str, Callable[[], Counts]] = {
        "json.loads": lambda: count_with(json.loads, body),
        "ours": lambda: count_ours(chunks, types),
    }
    if args.libraries:
        runs.update(library_runs(body))
    expected = runs["json.loads"]()
    for run_name, run in runs.items():
        if run() != expected:
            raise SystemExit(f"{run_name} counted differently on {name}")
    seconds = median_seconds(runs, args.repeat, CLOCKS[args.clock])
    for run_name, taken in seconds.items():
        ratio = seconds["json.loads"] / taken
        print(f"  {run_name:>12}: {lines / taken / 1e3:8.1f} k lines/s  {ratio:5.2f}x json.loads")
    if args.cuts:
        bench_cuts(chunks, lines, args)
    return seconds["json.loads"] / seconds["ours"]


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    options.add_argument("--shape", choices=("server", "synthea", "both"), default="both")
    options.add_argument("--lines", type=int, default=100_000)
    options.add_argument("--repeat", type=int, default=5)
    options.add_argument("--clock", choices=sorted(CLOCKS), default="cpu")
    options.add_argument("--libraries", action="store_true")
    options.add_argument("--cuts", action="store_true")
    args = options.parse_args()
    ratios = {}
    if args.shape in ("server", "both"):
        body = make_observations(make_body("large", args.lines))
        ratios["server"] = bench("server", body, frozenset({"Observation"}), args)
    if args.shape in ("synthea", "both"):
        body = synthea_body(args.lines)
        ratios["synthea"] = bench("synthea", body, frozenset({"Observation", "Patient"}), args)
    for name, ratio in ratios.items():
        verdict = "ok" if ratio >= TARGET else "BELOW TARGET"
        print(f"ours / json.loads on {name}: {ratio:.2f}x (target >= {TARGET}x): {verdict}")


if __name__ == "__main__":
    main()
