"""The completion manifest: what is kept as plain values, and every way it can be malformed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from export_tally.errors import ProtocolError
from export_tally.transport.fhir_manifest import ExportFile, is_instant, parse_manifest
from tests.support.fhir_script import BASE, STATUS, manifest

WHERE = f"GET {STATUS}"


def parse(body: Any, types: tuple[str, ...] = ("Observation",)) -> Any:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_manifest(content, WHERE, STATUS, types)


def test_the_files_of_the_requested_types_with_their_counts_and_the_rest_kept_apart() -> None:
    result = parse(manifest())
    assert result.files == (
        ExportFile(f"{BASE}/files/1.ndjson", "Observation", 10),
        ExportFile(f"{BASE}/files/2.ndjson", "Observation", None),
    )
    assert result.unrequested == (ExportFile(f"{BASE}/files/3.ndjson", "Patient", 2),)
    assert result.files[0].format == "ndjson"
    assert result.requires_access_token is True
    assert result.transaction_time == "2026-12-06T13:30:32+00:00"
    assert (result.errors, result.deleted) == ((), ())


def test_fields_it_does_not_know_are_ignored() -> None:
    body = manifest(extension={"x": 1}, outputOrganizedBy="")
    body["output"][0]["continuesInFile"] = "9.Observation.ndjson"  # names a file never listed
    assert [file.url for file in parse(body).files] == [
        f"{BASE}/files/1.ndjson",
        f"{BASE}/files/2.ndjson",
    ]


def test_error_and_deleted_entries_are_kept() -> None:
    body = manifest(
        error=[{"type": "OperationOutcome", "url": f"{BASE}/files/err.ndjson"}],
        deleted=[{"type": "Bundle", "url": f"{BASE}/files/del.ndjson", "count": 3}],
    )
    result = parse(body)
    assert result.errors == (ExportFile(f"{BASE}/files/err.ndjson", "OperationOutcome", None),)
    assert result.deleted == (ExportFile(f"{BASE}/files/del.ndjson", "Bundle", 3),)


def test_a_relative_url_is_read_as_a_link_from_the_status_url() -> None:
    body = manifest(output=[{"type": "Observation", "url": "/r4/files/1.ndjson"}])
    assert parse(body).files[0].url == f"{BASE}/files/1.ndjson"


def test_a_manifest_without_error_list_has_no_error_files() -> None:
    body = manifest()
    del body["error"]
    assert parse(body).errors == ()


def entry(**fields: Any) -> dict[str, Any]:
    return manifest(output=[{"type": "Observation", "url": f"{BASE}/f.ndjson", **fields}])


@pytest.mark.parametrize(
    ("body", "wrong"),
    [
        (b"<html>", "answered 200 without a JSON manifest"),
        ([], "the manifest is not a JSON object"),
        (manifest(transactionTime=None), "'transactionTime' is missing or not an instant"),
        (manifest(transactionTime="yesterday"), "'transactionTime' is missing or not an instant"),
        (manifest(request=3), "'request' is missing or not a string"),
        (manifest(requiresAccessToken="true"), "'requiresAccessToken' is not true or false"),
        ({k: v for k, v in manifest().items() if k != "output"}, "has no 'output' list"),
        (manifest(output={}), "'output' is not a list"),
        (manifest(output=["x"]), r"output\[0\] is not an object"),
        (manifest(output=[{"url": f"{BASE}/f"}]), r"output\[0\] has no 'type'"),
        (manifest(output=[{"type": "Observation"}]), r"output\[0\] has no 'url'"),
        (manifest(output=[{"type": "Obs\x1b[2J", "url": "/f"}]), "'type' is not a FHIR resource"),
        (entry(url="ftp://x/f.ndjson"), "'url' is not an http"),
        (entry(count=-1), "'count' is not a non-negative integer"),
        (entry(count=True), "'count' is not a non-negative integer"),
        (entry(count=1.5), "'count' is not a non-negative integer"),
        (manifest(error=[{"type": "OperationOutcome"}]), r"error\[0\] has no 'url'"),
        (manifest(deleted="none"), "'deleted' is not a list"),
        (
            manifest(output=[{"type": "Observation", "url": f"{BASE}/f"}] * 2),
            f"lists {BASE}/f twice",
        ),
    ],
)
def test_a_malformed_manifest_is_a_protocol_error_naming_what(body: Any, wrong: str) -> None:
    with pytest.raises(ProtocolError, match=wrong) as caught:
        parse(body)
    assert str(caught.value).startswith(WHERE)


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        ("2026-12-06T13:30:32+00:00", True),
        ("2026-12-06T13:30:32.123Z", True),
        ("2026-12-06T13:30:32", False),
        ("2026-12-06", False),
        ("2026-13-06T13:30:32Z", False),
        (" 2026-12-06T13:30:32Z", False),
    ],
)
def test_an_instant_has_a_time_to_the_second_and_a_zone(text: str, instant: bool) -> None:
    assert is_instant(text) is instant
