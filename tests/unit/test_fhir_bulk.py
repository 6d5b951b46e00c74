"""The FHIR Bulk Data client's request sequences, against scripted answers and a fake clock.

Kick-off (headers, query, Content-Location, errors with their OperationOutcome and exit codes),
polling (Retry-After in seconds and as a date, the cap and its one report, backoff, 429 and
transient outcomes within --max-outage, a failed or vanished job) and DELETE.
"""

from __future__ import annotations

import email.utils

import httpx
import pytest

from export_tally.cli.exitcodes import ExitCode, exit_code_for
from export_tally.errors import (
    ExportJobGoneError,
    ProtocolError,
    ServerUnreachableError,
    UsageError,
)
from export_tally.transport.fhir_bulk import (
    MAX_POLL_WAIT,
    ExportRequest,
    delete_job,
    kick_off,
    poll_status,
)
from export_tally.transport.retry import MAX_RETRY_AFTER
from tests.support.fhir_script import (
    BASE,
    STATUS,
    FakeClock,
    Script,
    fhir_json,
    manifest,
    options,
    outcome,
)

ACCEPTED = httpx.Response(202, headers={"Content-Location": STATUS})
DONE = fhir_json(200, manifest())


def in_progress(**headers: str) -> httpx.Response:
    return httpx.Response(202, headers=headers)


def start(script: Script, request: ExportRequest | None = None) -> str:
    clock = FakeClock()
    return kick_off(script.client(), options(), request or ExportRequest(), clock=clock.clock)


# Kick-off


def test_the_kick_off_asks_for_an_async_export_of_the_group_and_types() -> None:
    script = Script(ACCEPTED)
    request = ExportRequest("demo", ("Observation", "Patient"), "2024-01-31T00:00:00+01:00")
    assert start(script, request) == STATUS
    sent = script.requests[0]
    assert sent.method == "GET"
    assert sent.url.path == "/r4/Group/demo/$export"
    assert sent.url.params["_type"] == "Observation,Patient"
    assert sent.url.params["_since"] == "2024-01-31T00:00:00+01:00"  # the + survives encoding
    assert "_outputFormat" not in sent.url.params
    assert sent.headers["Accept"] == "application/fhir+json"
    assert sent.headers["Prefer"] == "respond-async"


def test_without_a_group_the_kick_off_exports_all_patients_of_observations() -> None:
    script = Script(ACCEPTED)
    start(script)
    assert script.requests[0].url.path == "/r4/Patient/$export"
    assert dict(script.requests[0].url.params) == {"_type": "Observation"}


def test_a_relative_content_location_is_resolved_against_the_request() -> None:
    script = Script(httpx.Response(202, headers={"Content-Location": "../../jobs/9"}))
    assert start(script, ExportRequest("demo")) == f"{BASE}/jobs/9"


def test_a_202_without_content_location_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="without a Content-Location") as caught:
        start(Script(httpx.Response(202)))
    assert exit_code_for(caught.value) == ExitCode.PROTOCOL


def test_a_synchronous_200_is_not_an_export_job() -> None:
    with pytest.raises(ProtocolError, match="not 202 Accepted"):
        start(Script(fhir_json(200, {"resourceType": "Bundle"})))


def test_a_400_says_why_in_one_line_from_its_outcome_and_is_a_usage_error() -> None:
    body = outcome("not-supported", "Unknown resource type\n'Foo'", details=True)
    with pytest.raises(UsageError) as caught:
        start(Script(fhir_json(400, body)), ExportRequest(types=("Foo",)))
    message = str(caught.value)
    assert "\n" not in message
    assert "HTTP 400: error not-supported: Unknown resource type 'Foo'" in message
    assert exit_code_for(caught.value) == ExitCode.USAGE


def test_an_unknown_group_is_a_usage_error_naming_it() -> None:
    script = Script(fhir_json(404, outcome("not-found", "Group/nope is not known")))
    with pytest.raises(UsageError, match=r"group 'nope' not found.*Group/nope is not known"):
        start(script, ExportRequest("nope"))


def test_no_patient_level_export_asks_whether_the_url_is_a_fhir_base() -> None:
    page = httpx.Response(404, content=b"Not Found", headers={"Content-Type": "text/plain"})
    with pytest.raises(UsageError, match=r"404, no OperationOutcome.*a FHIR server's base"):
        start(Script(page))


def test_another_4xx_is_a_protocol_error() -> None:
    script = Script(fhir_json(406, outcome("not-supported", "Accept must be fhir+json")))
    with pytest.raises(ProtocolError, match="HTTP 406: error not-supported") as caught:
        start(script)
    assert exit_code_for(caught.value) == ExitCode.PROTOCOL


def test_a_4xx_without_an_outcome_says_what_it_was() -> None:
    page = httpx.Response(400, content=b"<html>", headers={"Content-Type": "text/html"})
    with pytest.raises(UsageError, match=r"HTTP 400, no OperationOutcome \(text/html\)"):
        start(Script(page))


def test_a_kick_off_while_another_job_runs_is_tried_again_after_429() -> None:
    clock = FakeClock()
    script = Script(fhir_json(429, outcome("throttled"), {"Retry-After": "3"}), ACCEPTED)
    assert kick_off(script.client(), options(), ExportRequest(), clock=clock.clock) == STATUS
    assert clock.slept == [3]


@pytest.mark.parametrize(
    ("request_args", "wrong"),
    [
        ({"since": "2024-01-31"}, "--since '2024-01-31' is not a FHIR instant"),
        ({"since": "2024-02-30T00:00:00Z"}, "is not a FHIR instant"),
        ({"since": "2024-01-31T00:00:00"}, "is not a FHIR instant"),  # no time zone
        ({"types": ("observation",)}, "--type 'observation' is not a FHIR resource type"),
        ({"types": ()}, "at least one resource type"),
        ({"group": "a/b"}, "group id 'a/b'"),
    ],
)
def test_bad_export_parameters_are_usage_errors(
    request_args: dict[str, object], wrong: str
) -> None:
    with pytest.raises(UsageError, match=wrong):
        ExportRequest(**request_args)  # type: ignore[arg-type]


# Polling


def poll(
    script: Script, clock: FakeClock, *, max_outage: float = 60.0, **callbacks: object
) -> object:
    return poll_status(
        script.client(), options(max_outage), STATUS, ("Observation",), clock=clock.clock,
        **callbacks,  # type: ignore[arg-type]
    )  # fmt: skip


def test_polling_honours_retry_after_in_seconds_and_as_a_date_and_passes_progress_on() -> None:
    clock = FakeClock()
    date = email.utils.formatdate(clock.now + 7, usegmt=True)
    script = Script(
        in_progress(**{"Retry-After": "3", "X-Progress": "40% complete"}),
        in_progress(**{"Retry-After": date, "X-Progress": "80%\ncomplete"}),
        DONE,
    )
    progress: list[str] = []
    result = poll(script, clock, on_progress=progress.append)
    assert [file.url for file in result.files] == [  # type: ignore[attr-defined]
        f"{BASE}/files/1.ndjson",
        f"{BASE}/files/2.ndjson",
    ]
    assert clock.slept == [3, 4]  # the date was 7 s ahead before the first wait
    assert progress == ["40% complete", "80% complete"]
    assert all(r.headers["Accept"] == "application/json" for r in script.requests)


def test_come_back_in_three_hours_is_reported_once_then_polled_at_the_cap() -> None:
    clock = FakeClock()
    script = Script(*[in_progress(**{"Retry-After": "10800"})] * 3, DONE)
    told: list[tuple[float, float]] = []
    poll(script, clock, on_long_wait=lambda asked, cap: told.append((asked, cap)))
    assert told == [(10800, MAX_POLL_WAIT)]
    assert clock.slept == [MAX_POLL_WAIT] * 3


def test_without_retry_after_polls_back_off_exponentially_up_to_the_cap() -> None:
    clock = FakeClock()
    script = Script(*[in_progress()] * 9, DONE)
    poll(script, clock)
    assert clock.slept == [1, 2, 4, 8, 16, 32, 64, 120, 120]


def test_429_on_the_status_url_is_waited_out() -> None:
    clock = FakeClock()
    script = Script(fhir_json(429, outcome("throttled"), {"Retry-After": "5"}), DONE)
    poll(script, clock)
    assert clock.slept == [5]


@pytest.mark.parametrize("status", [500, 503])
def test_a_transient_outcome_is_waited_out_not_a_failed_job(status: int) -> None:
    clock = FakeClock()
    busy = fhir_json(status, outcome("transient", "database busy"), {"Retry-After": "2"})
    script = Script(busy, busy, busy, busy, DONE)  # more than --retries 2 in a row
    poll(script, clock)
    assert clock.slept == [2, 2, 2, 2]


def test_transient_answers_end_when_max_outage_is_up() -> None:
    clock = FakeClock()
    busy = fhir_json(500, outcome("lock-error", "locked"), {"Retry-After": "4"})
    with pytest.raises(ServerUnreachableError, match=r"--max-outage 10\b") as caught:
        poll(Script(busy), clock, max_outage=10)
    assert exit_code_for(caught.value) == ExitCode.UNREACHABLE
    assert sum(clock.slept) == pytest.approx(10)


def test_a_failed_job_says_why_from_its_outcome_at_once() -> None:
    clock = FakeClock()
    failed = fhir_json(500, outcome("processing", "An internal timeout has occurred", details=True))
    with pytest.raises(ServerUnreachableError) as caught:
        poll(Script(failed), clock)
    assert str(caught.value) == (
        f"GET {STATUS}: the export failed "
        "(HTTP 500: error processing: An internal timeout has occurred)"
    )
    assert clock.slept == []


def test_a_job_that_is_gone_is_told_apart() -> None:
    script = Script(fhir_json(404, outcome("not-found", "no such job")))
    with pytest.raises(ExportJobGoneError, match="no such job"):
        poll(script, FakeClock())


def test_a_500_without_an_outcome_gets_the_loops_retries() -> None:
    clock = FakeClock()
    crash = httpx.Response(500, content=b"oops", headers={"Content-Type": "text/plain"})
    poll(Script(crash, DONE), clock)
    assert len(clock.slept) == 1


def test_an_unexpected_2xx_on_the_status_url_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="HTTP 204, not 200 or 202"):
        poll(Script(httpx.Response(204)), FakeClock())


# DELETE


@pytest.mark.parametrize(("status", "deleted"), [(202, True), (204, True), (404, False)])
def test_delete_ends_the_job_and_a_job_already_gone_is_fine(status: int, deleted: bool) -> None:
    script = Script(httpx.Response(status))
    clock = FakeClock()
    assert delete_job(script.client(), options(), STATUS, clock=clock.clock) is deleted
    assert [(r.method, str(r.url)) for r in script.requests] == [("DELETE", STATUS)]


def test_a_refused_delete_says_so() -> None:
    script = Script(fhir_json(405, outcome("not-supported")))
    with pytest.raises(ServerUnreachableError, match=f"DELETE {STATUS} answered HTTP 405"):
        delete_job(script.client(), options(), STATUS, clock=FakeClock().clock)


def test_a_429_asking_for_hours_is_reported_once_and_waited_at_the_loops_cap() -> None:
    clock = FakeClock()
    slow_down = fhir_json(429, outcome("throttled"), {"Retry-After": "10800"})
    told: list[tuple[float, float]] = []
    poll(
        Script(slow_down, slow_down, DONE), clock, max_outage=600,
        on_long_wait=lambda asked, cap: told.append((asked, cap)),
    )  # fmt: skip
    assert told == [(10800, MAX_RETRY_AFTER)]
    assert clock.slept == [MAX_RETRY_AFTER] * 2


def test_refused_credentials_on_the_kick_off_are_not_retried() -> None:
    script = Script(fhir_json(401, outcome("login", "token expired")))
    with pytest.raises(ServerUnreachableError, match="refused the credentials"):
        start(script)
    assert len(script.requests) == 1
