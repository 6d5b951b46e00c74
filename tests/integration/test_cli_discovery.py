"""Discovery answers that are not what the API promises: exit 4, one line naming what is wrong."""

from __future__ import annotations

from typing import Any

import pytest

from export_tally.cli.exitcodes import ExitCode
from export_tally.transport.export_api import MAX_METADATA_BYTES
from tests.support.cli_run import run_cli
from tests.support.fixture_server import Answer, export_routes, fixture_server, json_answer

BODY = "patient_id,event_time,event_type,value\nA,t,hr,1\n"


def metadata(**fields: Any) -> Answer:
    """Download d1's metadata: one row, well formed, except for `fields`."""
    data = {"id": "d1", "rows": 1, "event_types": ["hr"], "patients": ["A"], **fields}
    return json_answer({"data": data})


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        pytest.param(
            metadata(rows=-1),
            "GET /api/export/x/d1: field 'rows' is negative (-1)",
            id="negative-rows",
        ),
        pytest.param(
            metadata(patients=["A", 1]),
            "GET /api/export/x/d1: field 'patients' must be a list of strings",
            id="not-strings",
        ),
    ],
)
def test_download_metadata_of_the_wrong_shape_is_a_protocol_error(
    answer: Answer, message: str
) -> None:
    routes = export_routes("x", {"d1": BODY})
    routes["/api/export/x/d1"] = answer
    with fixture_server(routes) as url:
        outcome = run_cli("x", "--server", url)
    assert outcome.status == ExitCode.PROTOCOL
    assert outcome.stderr == f"cli: error: {message}\n"


def test_metadata_larger_than_the_cap_is_a_protocol_error() -> None:
    routes = export_routes("x", {"d1": BODY})
    routes["/api/export/x"] = Answer(b" " * (MAX_METADATA_BYTES + 1))  # nothing but its size
    with fixture_server(routes) as url:
        outcome = run_cli("x", "--server", url)
    assert outcome.status == ExitCode.PROTOCOL
    message = f"{url}/api/export/x answered more than {MAX_METADATA_BYTES} bytes of metadata"
    assert outcome.stderr == f"cli: error: {message}\n"
