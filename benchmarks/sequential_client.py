"""The typical published client of the exercise, the baseline of bench_cli: one process, downloads
one after another, each streamed through csv.DictReader.

    python -m benchmarks.sequential_client URL EXPORT_ID    # prints the counts as JSON

It runs as a process of its own, like the tool, so that both pay for starting Python and importing
what they use.
"""

from __future__ import annotations

import csv
import json
import sys
from collections import Counter
from typing import Any

import httpx


def count(url: str, export_id: str) -> dict[str, Any]:
    """The export's counts, in the tool's output shape."""
    counts: Counter[tuple[str, str]] = Counter()
    with httpx.Client(timeout=60) as client:
        ids = client.get(f"{url}/api/export/{export_id}").json()["data"]["download_ids"]
        for download_id in ids:
            with client.stream("GET", f"{url}/api/export/{export_id}/{download_id}/data") as r:
                lines = (line + "\n" for line in r.iter_lines())
                for row in csv.DictReader(lines):
                    counts[row["patient_id"], row["event_type"]] += 1
    patients: dict[str, dict[str, int]] = {}
    totals: Counter[str] = Counter()
    for (patient, event_type), n in counts.items():
        patients.setdefault(patient, {})[event_type] = n
        totals[event_type] += n
    return {"patients": patients, "totals": dict(totals)}


if __name__ == "__main__":
    print(json.dumps(count(sys.argv[1], sys.argv[2]), sort_keys=True))
