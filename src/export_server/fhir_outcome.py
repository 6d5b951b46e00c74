"""FHIR OperationOutcome answers: every error of the FHIR routes is one, with its status code."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

FHIR_JSON = "application/fhir+json"


class FhirError(Exception):
    """An error the FHIR routes answer with an OperationOutcome: `status`, the IssueType `code`
    (http://hl7.org/fhir/issue-type), and a sentence for people."""

    def __init__(
        self, status: int, code: str, text: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(text)
        self.status = status
        self.code = code
        self.text = text
        self.headers = headers or {}


def issue(code: str, text: str, severity: str = "error") -> dict[str, Any]:
    """One OperationOutcome issue."""
    return {"severity": severity, "code": code, "diagnostics": text}


def operation_outcome(*issues: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": list(issues)}


def resource_bytes(resource: object) -> bytes:
    """A FHIR resource's JSON, compact, on one line."""
    return json.dumps(resource, separators=(",", ":")).encode()


def fhir_json(
    resource: object, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A FHIR resource as `application/fhir+json`."""
    return Response(resource_bytes(resource), status, headers=headers, media_type=FHIR_JSON)


def outcome_response(
    status: int, code: str, text: str, headers: dict[str, str] | None = None,
    severity: str = "error",
) -> Response:  # fmt: skip
    """An OperationOutcome of one issue, with `status`."""
    return fhir_json(operation_outcome(issue(code, text, severity)), status, headers)


def error_response(error: FhirError) -> Response:
    return outcome_response(error.status, error.code, error.text, error.headers)


# The IssueType of an HTTP error the router raises before any FHIR route runs.
_HTTP_ISSUES = {404: "not-found", 405: "not-supported"}


def is_fhir_path(path: str) -> bool:
    return path == "/fhir" or path.startswith("/fhir/")


def http_error_response(
    status: int, method: str, path: str, headers: dict[str, str] | None = None
) -> Response:
    """The OperationOutcome for an HTTP error of the router under /fhir (no such route: 404; a
    method the route does not answer: 405, its `Allow` kept in `headers`)."""
    if status == 405:
        allowed = (headers or {}).get("Allow", "")
        text = f"{method} is not allowed on {path} (allowed: {allowed})"
    elif status == 404:
        text = f"nothing is served at {path}"
    else:
        text = f"HTTP {status} for {method} {path}"
    return outcome_response(status, _HTTP_ISSUES.get(status, "processing"), text, headers)
