"""A kick-off request, read and checked: its parameters (query or `Parameters` body) and headers.

Strict by default: a parameter the server does not support is a 400. With `Prefer:
handling=lenient` it is left out instead, and said so in the manifest's `error` file. A value
that is malformed (`_since`, `_outputFormat`, a `patient` reference) is a 400 either way.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from starlette.requests import Request

from export_server.dataset import downloads_of
from export_server.fhir_outcome import FhirError

OUTPUT_FORMATS = ("application/fhir+ndjson", "application/ndjson", "ndjson")
RESOURCE_TYPES = ("Patient", "Observation")
PARAMETERS = ("_outputFormat", "_type", "_since", "patient")
_INSTANT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
_VALUE_KEYS = ("valueString", "valueCode", "valueInstant", "valueDateTime", "valueUri")


@dataclass(frozen=True)
class ExportRequest:
    """What a kick-off asks for. `url` is the request's URL (a POST's without its query);
    `level` is "group", "patient" or "system"; `patients` None keeps every patient; `ignored`
    says, a sentence each, what lenient handling left out."""

    url: str
    export_id: str
    level: str
    types: tuple[str, ...] = RESOURCE_TYPES
    since: datetime | None = None
    patients: frozenset[str] | None = None
    ignored: tuple[str, ...] = ()

    @property
    def since_key(self) -> bytes | None:
        """`since` as a CSV row's `time_key`, to compare with rows' times."""
        if self.since is None:
            return None
        return self.since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f").encode()


@cache
def export_patients(export_id: str) -> tuple[str, ...]:
    """Every patient id of an export, sorted."""
    return tuple(sorted({p for d in downloads_of(export_id) for p in d.patients}))


def _prefer(request: Request) -> tuple[bool, bool]:
    """(respond-async asked for, handling=lenient asked for), from every Prefer header."""
    tokens = {
        token.partition(";")[0].strip().replace(" ", "").lower()  # without its parameters
        for value in request.headers.getlist("prefer")
        for token in value.split(",")
    }
    return "respond-async" in tokens, "handling=lenient" in tokens


def _bad(text: str) -> FhirError:
    return FhirError(400, "invalid", text)


async def _parameters(request: Request) -> dict[str, list[str]]:
    """Every parameter's values, from the query and, for a POST, the `Parameters` body."""
    values: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        values.setdefault(name, []).append(value)
    if request.method != "POST":
        return values
    try:
        body: Any = json.loads(await request.body())
    except ValueError:
        raise _bad(
            "the body is not JSON: a POST kick-off sends a FHIR Parameters resource"
        ) from None
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise _bad("the body is not a FHIR Parameters resource")
    for parameter in body.get("parameter", []):
        given: Any = parameter.get("name") if isinstance(parameter, dict) else None
        if not isinstance(given, str):
            raise _bad("a parameter of the Parameters body has no name")
        reference = parameter.get("valueReference")
        found: Any = (
            reference.get("reference")
            if isinstance(reference, dict)
            else next((parameter[key] for key in _VALUE_KEYS if key in parameter), None)
        )
        if not isinstance(found, str):
            raise _bad(f"parameter {given!r} has no value this server understands")
        values.setdefault(given, []).append(found)
    return values


def _single(values: dict[str, list[str]], name: str) -> str | None:
    given = values.get(name)
    if given is None:
        return None
    if len(given) != 1:
        raise _bad(f"{name} is given {len(given)} times; give it once")
    return given[0]


def _since(text: str) -> datetime:
    if not _INSTANT.match(text):
        raise _bad(f"_since {text!r} is not a FHIR instant (e.g. 2025-08-26T00:00:00Z)")
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _bad(f"_since {text!r} is not a valid instant") from None


async def parse_kickoff(request: Request, export_id: str, level: str) -> ExportRequest:
    """The kick-off's request, checked. Raises FhirError (400) for what the server refuses."""
    asynchronous, lenient = _prefer(request)
    if not asynchronous:
        raise _bad("a kick-off needs the header Prefer: respond-async")
    values = await _parameters(request)
    ignored: list[str] = []

    def unsupported(text: str) -> None:
        if not lenient:
            raise FhirError(400, "not-supported", text + " (Prefer: handling=lenient ignores it)")
        ignored.append(text + ": ignored")

    for name in values:
        if name not in PARAMETERS:
            unsupported(f"parameter {name!r} is not supported")
    output_format = _single(values, "_outputFormat")
    if output_format is not None and output_format not in OUTPUT_FORMATS:
        raise _bad(
            f"_outputFormat {output_format!r}: this server writes {', '.join(OUTPUT_FORMATS)}"
        )
    types: tuple[str, ...] = RESOURCE_TYPES
    if "_type" in values:
        asked = [t.strip() for value in values["_type"] for t in value.split(",") if t.strip()]
        for name in asked:
            if name not in RESOURCE_TYPES:
                unsupported(f"resource type {name!r} is not exported by this server")
        types = tuple(t for t in RESOURCE_TYPES if t in asked)
    since_text = _single(values, "_since")
    since = _since(since_text) if since_text is not None else None
    patients = _patients(values.get("patient"), request.method, export_id, level, unsupported)
    url = str(request.url.replace(query="")) if request.method == "POST" else str(request.url)
    return ExportRequest(url, export_id, level, types, since, patients, tuple(ignored))


def _patients(
    references: list[str] | None, method: str, export_id: str, level: str, unsupported: Any
) -> frozenset[str] | None:
    """The patient ids the `patient` parameter keeps (None: every patient)."""
    if references is None:
        return None
    if method != "POST":
        unsupported("parameter 'patient' is taken in a POST kick-off only")
        return None
    if level == "system":
        unsupported("parameter 'patient' does not apply to a system-level export")
        return None
    known = set(export_patients(export_id))
    kept: set[str] = set()
    for reference in references:
        patient_id = reference.rpartition("Patient/")[2]
        if "Patient/" not in reference or not patient_id:
            raise _bad(f"patient {reference!r} is not a reference to a Patient (Patient/<id>)")
        if patient_id in known:
            kept.add(patient_id)
        else:
            unsupported(f"patient {reference!r} is not a member of Group {export_id}")
    return frozenset(kept)
