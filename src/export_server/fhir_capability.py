"""`GET /fhir/metadata`: the CapabilityStatement of the FHIR Bulk Data routes."""

from __future__ import annotations

from typing import Any

from export_server.fhir_request import PARAMETERS

BULK_DATA = "http://hl7.org/fhir/uv/bulkdata"
# A fixed date: the statement changes only with the code, and the same code answers the same.
DATE = "2026-12-06"


def capability_statement(base_url: str, secured: bool) -> dict[str, Any]:
    """The statement for a server whose FHIR base is `base_url`; `secured`: SMART Backend
    Services authorization is on."""
    export = [{"name": "export", "definition": f"{BULK_DATA}/OperationDefinition/export"}]
    rest: dict[str, Any] = {
        "mode": "server",
        "documentation": "FHIR Bulk Data export of the mock server's exports; parameters: "
        + ", ".join(PARAMETERS),
        "resource": [
            {
                "type": "Group",
                "operation": [
                    {
                        "name": "export",
                        "definition": f"{BULK_DATA}/OperationDefinition/group-export",
                    }
                ],
            },
            {
                "type": "Patient",
                "operation": [
                    {
                        "name": "export",
                        "definition": f"{BULK_DATA}/OperationDefinition/patient-export",
                    }
                ],
            },
            {"type": "Observation"},
        ],
        "operation": export,
    }
    if secured:
        rest["security"] = {
            "service": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                            "code": "SMART-on-FHIR",
                        }
                    ]
                }
            ],
            "description": "SMART Backend Services: see .well-known/smart-configuration",
        }
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": DATE,
        "kind": "instance",
        "instantiates": [f"{BULK_DATA}/CapabilityStatement/bulk-data"],
        "software": {"name": "export-tally mock export server"},
        "implementation": {"description": "export-tally mock export server", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [rest],
    }
