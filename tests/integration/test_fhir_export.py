"""FHIR Bulk Data export on the real server: kick-off, manifest, files, parameters, DELETE."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.fhir import export_manifest, kick_off, observation_counts, wait_for_manifest
from tests.support.servers import RunningServer

ROOT = Path(__file__).resolve().parents[2]
ASYNC = {"Prefer": "respond-async"}


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60) as session:
        yield session


@pytest.fixture(scope="module")
def fhir(warm_server: RunningServer) -> str:
    return warm_server.url + "/fhir"


@pytest.fixture(scope="module")
def demo_manifest(client: httpx.Client, fhir: str) -> dict[str, Any]:
    return export_manifest(client, f"{fhir}/Group/demo/$export")


def lines_of(client: httpx.Client, url: str, **headers: str) -> list[bytes]:
    response = client.get(url, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/fhir+ndjson"
    return response.content.splitlines()


def test_metadata_is_a_bulk_data_capability_statement(client: httpx.Client, fhir: str) -> None:
    response = client.get(f"{fhir}/metadata")
    assert response.headers["content-type"] == "application/fhir+json"
    statement = response.json()
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "4.0.1"
    assert statement["instantiates"] == [
        "http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"
    ]
    types = {resource["type"] for resource in statement["rest"][0]["resource"]}
    assert {"Group", "Patient"} <= types
    assert statement["rest"][0]["operation"][0]["name"] == "export"


def test_every_file_counted_equals_the_csv_answer(
    client: httpx.Client, demo_manifest: dict[str, Any]
) -> None:
    manifest = demo_manifest
    assert manifest["requiresAccessToken"] is False
    assert manifest["error"] == []
    assert manifest["request"].endswith("/fhir/Group/demo/$export")
    observations: list[bytes] = []
    for entry in manifest["output"]:
        lines = lines_of(client, entry["url"])
        assert len(lines) == entry["count"]
        if entry["type"] == "Observation":
            observations += lines
        else:
            assert entry["type"] == "Patient"
            assert [json.loads(line)["id"] for line in lines] == ["P001", "P002", "P003", "P004"]
    expected = json.loads((ROOT / "demo.json").read_text())["patients"]
    assert observation_counts(observations) == expected
    ids = [json.loads(line)["id"] for line in observations]
    assert len(set(ids)) == len(ids)


@pytest.mark.slow
def test_the_same_export_gives_the_same_bytes(
    client: httpx.Client, fhir: str, demo_manifest: dict[str, Any]
) -> None:
    again = export_manifest(client, f"{fhir}/Group/demo/$export", _type="Observation")
    first = client.get(demo_manifest["output"][1]["url"]).content
    assert client.get(again["output"][0]["url"]).content == first


def test_gzip_when_asked(client: httpx.Client, demo_manifest: dict[str, Any]) -> None:
    url = demo_manifest["output"][1]["url"]
    plain = client.get(url, headers={"Accept-Encoding": "identity"}).content
    with client.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as response:
        assert response.headers["content-encoding"] == "gzip"
        raw = b"".join(response.iter_raw())
    assert len(raw) < len(plain) // 5
    assert gzip.decompress(raw) == plain
    with client.stream("GET", url, headers={"Accept-Encoding": "identity"}) as response:
        assert "content-encoding" not in response.headers
    patients = demo_manifest["output"][0]["url"]  # a file made whole in memory
    with client.stream("GET", patients, headers={"Accept-Encoding": "gzip"}) as response:
        assert response.headers["content-encoding"] == "gzip"
        raw = b"".join(response.iter_raw())
    assert (
        gzip.decompress(raw)
        == client.get(patients, headers={"Accept-Encoding": "identity"}).content
    )


def test_a_range_resumes_a_cut_file(client: httpx.Client, demo_manifest: dict[str, Any]) -> None:
    url = demo_manifest["output"][2]["url"]
    whole = client.get(url, headers={"Accept-Encoding": "identity"})  # httpx asks for gzip
    size = int(whole.headers["content-length"])
    assert size == len(whole.content)
    part = client.get(url, headers={"Range": "bytes=1000000-", "If-Range": whole.headers["etag"]})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 1000000-{size - 1}/{size}"
    assert part.content == whole.content[1_000_000:]
    stale = client.get(url, headers={"Range": "bytes=10-19", "If-Range": '"other"'})
    assert stale.status_code == 200
    beyond = client.get(url, headers={"Range": f"bytes={size}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{size}"
    assert beyond.json()["issue"][0]["code"] == "invalid"


def test_type_keeps_only_that_type(client: httpx.Client, fhir: str) -> None:
    manifest = export_manifest(client, f"{fhir}/Group/demo/$export", _type="Patient")
    assert [entry["type"] for entry in manifest["output"]] == ["Patient"]


@pytest.mark.slow
def test_since_keeps_later_resources_only(
    client: httpx.Client, fhir: str, demo_manifest: dict[str, Any]
) -> None:
    since = "2025-08-27T00:00:00Z"
    manifest = export_manifest(client, f"{fhir}/Group/demo/$export", _since=since)
    assert [entry["type"] for entry in manifest["output"]] == ["Observation"]
    (entry,) = manifest["output"]
    lines = lines_of(client, entry["url"])
    assert len(lines) == entry["count"] > 0
    times = [json.loads(line)["meta"]["lastUpdated"] for line in lines]
    assert min(times) > "2025-08-27T00:00:00"
    # Every row of the second download after the instant, none before: the count says it.
    later = [
        t
        for item in demo_manifest["output"][1:]
        for line in lines_of(client, item["url"])
        if (t := json.loads(line)["meta"]["lastUpdated"]) > "2025-08-27T00:00:00"
    ]
    assert len(later) == entry["count"]


@pytest.mark.parametrize(
    "output_format", ["application/fhir+ndjson", "application/ndjson", "ndjson"]
)
def test_output_formats_accepted(client: httpx.Client, fhir: str, output_format: str) -> None:
    kick_off(client, f"{fhir}/Group/demo/$export", _outputFormat=output_format, _type="Patient")


@pytest.mark.parametrize(
    ("params", "headers", "status", "code", "words"),
    [
        ({"_outputFormat": "text/csv"}, ASYNC, 400, "invalid", "_outputFormat"),
        ({"_elements": "id"}, ASYNC, 400, "not-supported", "_elements"),
        ({"_type": "Condition"}, ASYNC, 400, "not-supported", "Condition"),
        ({"patient": "Patient/P001"}, ASYNC, 400, "not-supported", "POST"),
        ({"_since": "yesterday"}, ASYNC, 400, "invalid", "instant"),
        ({}, {}, 400, "invalid", "respond-async"),
    ],
    ids=["output-format", "unknown-parameter", "unknown-type", "patient-in-get", "since", "no-prefer"],
)  # fmt: skip
def test_refused_kickoffs_are_operation_outcomes(
    client: httpx.Client, fhir: str, params: dict[str, str], headers: dict[str, str], status: int,
    code: str, words: str,
) -> None:  # fmt: skip
    response = client.get(f"{fhir}/Group/demo/$export", params=params, headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/fhir+json"
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == code
    assert words in outcome["issue"][0]["diagnostics"]


def test_every_other_error_is_an_operation_outcome(
    client: httpx.Client, fhir: str, demo_manifest: dict[str, Any]
) -> None:
    status_url = demo_manifest["output"][0]["url"].rsplit("/", 1)[0]
    bad_json = {**ASYNC, "Content-Type": "application/fhir+json"}
    answers = {
        "no such route": (client.get(f"{fhir}/Nothing/here"), 404, "not-found"),
        "no such job": (client.get(f"{fhir}/jobs/nope"), 404, "not-found"),
        "no such file": (client.get(f"{status_url}/Condition.ndjson"), 404, "not-found"),
        "PUT metadata": (client.put(f"{fhir}/metadata"), 405, "not-supported"),
        "POST a status URL": (client.post(status_url), 405, "not-supported"),
        "POST not JSON": (
            client.post(f"{fhir}/Group/demo/$export", content=b"{", headers=bad_json),
            400, "invalid",
        ),
        "POST not Parameters": (
            client.post(f"{fhir}/$export", json={"resourceType": "Patient"}, headers=ASYNC),
            400, "invalid",
        ),
    }  # fmt: skip
    for case, (response, status, code) in answers.items():
        assert response.status_code == status, case
        assert response.headers["content-type"] == "application/fhir+json", case
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome", case
        assert outcome["issue"][0]["code"] == code, case
    assert set(answers["PUT metadata"][0].headers["allow"].split(", ")) == {"GET", "HEAD"}


def test_unknown_group_is_404(client: httpx.Client, fhir: str) -> None:
    response = client.get(f"{fhir}/Group/nope/$export", headers=ASYNC)
    assert response.status_code == 404
    assert response.json()["issue"][0]["code"] == "not-found"


def test_lenient_handling_ignores_and_says_so(client: httpx.Client, fhir: str) -> None:
    headers = {"Prefer": "respond-async, handling=lenient"}
    status_url = kick_off(
        client, f"{fhir}/Group/demo/$export", headers, _type="Patient,Condition", _elements="id"
    )
    manifest = wait_for_manifest(client, status_url)[0].json()
    assert [entry["type"] for entry in manifest["output"]] == ["Patient"]
    (error,) = manifest["error"]
    assert error["type"] == "OperationOutcome" and error["count"] == 2
    outcomes = [json.loads(line) for line in lines_of(client, error["url"])]
    said = " ".join(o["issue"][0]["diagnostics"] for o in outcomes)
    assert "'_elements'" in said and "'Condition'" in said


@pytest.mark.slow
def test_post_with_patients_keeps_only_them(client: httpx.Client, fhir: str) -> None:
    parameters = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "patient", "valueReference": {"reference": "Patient/P002"}},
            {"name": "_type", "valueString": "Observation,Patient"},
        ],
    }
    response = client.post(f"{fhir}/Group/demo/$export", json=parameters, headers=ASYNC)
    assert response.status_code == 202
    manifest = wait_for_manifest(client, response.headers["content-location"])[0].json()
    assert manifest["request"].endswith("/fhir/Group/demo/$export")
    observations: list[bytes] = []
    for entry in manifest["output"]:
        lines = lines_of(client, entry["url"])
        assert len(lines) == entry["count"]
        if entry["type"] == "Observation":
            observations += lines
    expected = json.loads((ROOT / "demo.json").read_text())["patients"]["P002"]
    assert observation_counts(observations) == {"P002": expected}


def test_patient_and_system_level_export_the_population(client: httpx.Client, fhir: str) -> None:
    for path in ("Patient/$export", "$export"):
        manifest = export_manifest(client, f"{fhir}/{path}", _type="Patient")
        assert manifest["output"][0]["count"] == 4  # demo's patients, the default population


def test_delete_removes_the_job_and_its_files(
    client: httpx.Client, fhir: str, demo_manifest: dict[str, Any]
) -> None:
    status_url = kick_off(client, f"{fhir}/Group/demo/$export", _type="Patient")
    manifest = wait_for_manifest(client, status_url)[0].json()
    file_url = manifest["output"][0]["url"]
    assert client.get(file_url).status_code == 200
    assert client.delete(status_url).status_code == 202
    for url in (status_url, file_url):
        response = client.get(url)
        assert response.status_code == 404
        assert "deleted" in response.json()["issue"][0]["diagnostics"]
    assert client.delete(status_url).status_code == 404
    # Other jobs are untouched.
    assert client.get(demo_manifest["output"][0]["url"]).status_code == 200


def test_prefer_tokens_may_carry_parameters(client: httpx.Client, fhir: str) -> None:
    headers = {"Prefer": "handling=strict, respond-async; wait=10"}
    kick_off(client, f"{fhir}/Group/demo/$export", headers, _type="Patient")
