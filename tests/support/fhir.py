"""Reading FHIR NDJSON in tests: counts as the CSV API's answer files (demo.json) hold them."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable


def observation_counts(lines: Iterable[bytes]) -> dict[str, dict[str, int]]:
    """Observations per subject id per `code.text`, from NDJSON lines."""
    counts: Counter[tuple[str, str]] = Counter()
    for line in lines:
        resource = json.loads(line)
        assert resource["resourceType"] == "Observation"
        patient = resource["subject"]["reference"].removeprefix("Patient/")
        counts[patient, resource["code"]["text"]] += 1
    by_patient: dict[str, dict[str, int]] = {}
    for (patient, text), n in sorted(counts.items()):
        by_patient.setdefault(patient, {})[text] = n
    return by_patient


def merge_counts(*parts: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    merged: Counter[tuple[str, str]] = Counter()
    for part in parts:
        for patient, by_text in part.items():
            for text, n in by_text.items():
                merged[patient, text] += n
    result: dict[str, dict[str, int]] = {}
    for (patient, text), n in sorted(merged.items()):
        result.setdefault(patient, {})[text] = n
    return result
