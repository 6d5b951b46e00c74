"""The real-world sample (tests/data/fhir/synthea-100/: what a public bulk-data server exported)
counted exactly, against counts worked out here from the files with json.loads."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from export_tally.core.counts.tally import Key
from export_tally.core.ndjson import NdjsonCountingParser
from tests.support.feeding import feed_all

SAMPLE = Path(__file__).parent.parent / "data" / "fhir" / "synthea-100"
MANIFEST = json.loads((SAMPLE / "manifest.json").read_text(encoding="utf-8"))
FILES = [entry["url"].rsplit("/", 1)[1] for entry in MANIFEST["output"]]
CHUNK = 64 * 1024


def expected_counts(name: str, key_mode: str) -> tuple[Counter[Key], dict[str, str]]:
    """Per patient per key, and each code's first display, read plainly from every line."""
    counts: Counter[Key] = Counter()
    labels: dict[str, str] = {}
    for line in (SAMPLE / name).read_bytes().splitlines():
        resource = json.loads(line)
        if resource["resourceType"] == "Patient":
            counts[resource["id"], "Patient"] += 1
            continue
        reference = resource["subject"]["reference"]
        assert reference.startswith("Patient/")
        coding = resource["code"]["coding"][0]
        if key_mode == "code":
            counts[reference.removeprefix("Patient/"), coding["code"]] += 1
            labels.setdefault(coding["code"], coding["display"])
        else:
            counts[reference.removeprefix("Patient/"), resource["code"]["text"]] += 1
    return counts, labels


@pytest.mark.parametrize("key_mode", ["code", "text"])
@pytest.mark.parametrize("name", FILES)
def test_each_file_is_counted_exactly(name: str, key_mode: str) -> None:
    body = (SAMPLE / name).read_bytes()
    parser = NdjsonCountingParser(key_mode)  # type: ignore[arg-type]
    result = feed_all(parser, [body[i : i + CHUNK] for i in range(0, len(body), CHUNK)])
    counts, labels = expected_counts(name, key_mode)
    assert dict(result.aggregate.counts) == dict(counts)
    assert dict(result.aggregate.labels) == labels
    assert result.rows == next(e["count"] for e in MANIFEST["output"] if e["url"].endswith(name))
    assert result.skipped == 0
    if name.endswith("Observation.ndjson"):
        assert parser.fast_rows == result.rows  # every line of these took the fast path


def test_the_sample_s_numbers() -> None:
    """What the sample's README says it holds, as the counter sees it."""
    tallies = [
        feed_all(NdjsonCountingParser(), [(SAMPLE / name).read_bytes()]).aggregate for name in FILES
    ]
    observations = sum(t.total for t in tallies[:2])
    patients = {p for t in tallies for p, _ in t.counts}
    assert (observations, tallies[2].total, len(patients)) == (16_315, 100, 100)
    assert tallies[0].labels["8302-2"] == "Body Height"
    assert all(not t.without_patient for t in tallies)
