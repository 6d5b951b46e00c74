"""FHIR Bulk Data in tests: a client's steps, and NDJSON read into counts as demo.json holds them."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

import httpx


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


def kick_off(
    client: httpx.Client, url: str, headers: dict[str, str] | None = None, **params: str
) -> str:
    """Start an export at `url` (a kick-off URL); the status URL the server gave."""
    sent = {"Prefer": "respond-async", "Accept": "application/fhir+json", **(headers or {})}
    response = client.get(url, params=params, headers=sent)
    assert response.status_code == 202, response.text
    return response.headers["content-location"]


def wait_for_manifest(
    client: httpx.Client, status_url: str, headers: dict[str, str] | None = None
) -> tuple[httpx.Response, list[httpx.Response]]:
    """Poll the status URL as a client should (waiting Retry-After seconds between polls, and
    polling again after a 5xx whose OperationOutcome says `transient`) until the manifest comes:
    (the manifest's answer, the 202 answers before it)."""
    waiting: list[httpx.Response] = []
    while True:
        response = client.get(status_url, headers=headers)
        if response.status_code == 200:
            return response, waiting
        if response.status_code >= 500:
            assert response.json()["issue"][0]["code"] == "transient", response.text
        else:
            assert response.status_code == 202, response.text
            waiting.append(response)
        time.sleep(float(response.headers["retry-after"]))  # the server's word, not a guess


def export_manifest(client: httpx.Client, url: str, **params: str) -> dict[str, Any]:
    """Kick off at `url` and wait for the manifest's body."""
    answer, _ = wait_for_manifest(client, kick_off(client, url, None, **params))
    manifest: dict[str, Any] = answer.json()
    return manifest
