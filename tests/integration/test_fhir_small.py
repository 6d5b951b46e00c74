"""`small` through FHIR Bulk Data: one download's Observations counted as its CSV is (slow)."""

from __future__ import annotations

import csv
import io
from collections import Counter

import httpx
import pytest

from export_server.dataset import downloads_of
from tests.support.fhir import export_manifest, observation_counts
from tests.support.servers import RunningServer


@pytest.mark.slow
def test_a_small_download_counts_as_its_csv(warm_small_server: RunningServer) -> None:
    download = downloads_of("small")[3]
    url = warm_small_server.url
    with httpx.Client(timeout=300) as client:
        manifest = export_manifest(client, f"{url}/fhir/Group/small/$export", _type="Observation")
        entries = manifest["output"]
        assert [entry["count"] for entry in entries] == [d.rows for d in downloads_of("small")]
        ndjson = client.get(entries[3]["url"]).content
        body = client.get(f"{url}/api/export/small/{download.id}/data").text
    lines = ndjson.splitlines()
    assert len(lines) == download.rows
    csv_counts: Counter[tuple[str, str]] = Counter(
        (row["patient_id"], row["event_type"]) for row in csv.DictReader(io.StringIO(body))
    )
    expected: dict[str, dict[str, int]] = {}
    for (patient, event_type), n in sorted(csv_counts.items()):
        expected.setdefault(patient, {})[event_type] = n
    assert observation_counts(lines) == expected
