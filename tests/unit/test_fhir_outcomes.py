"""OperationOutcomes: the one line an error answer says, transient codes, error files summarised."""

from __future__ import annotations

import json

import httpx
import pytest

from export_tally.errors import ProtocolError
from export_tally.transport.fhir_outcomes import (
    ErrorTally,
    Issue,
    describe_issues,
    is_transient,
    issues_of,
    read_outcome,
    summarise_error_files,
)
from export_tally.transport.retry import retry_after_seconds
from tests.support.fhir_script import BASE, FakeClock, Script, options, outcome


def test_the_line_comes_from_diagnostics_or_details_text_cleaned_to_one_line() -> None:
    diagnostics = issues_of(outcome("invalid", "bad\x1b[31m _since\r\n value"))
    assert diagnostics is not None
    assert describe_issues(diagnostics) == "error invalid: bad [31m _since value"
    details = issues_of(outcome("processing", "timed out", "fatal", details=True))
    assert details is not None and describe_issues(details) == "fatal processing: timed out"
    bare = issues_of({"resourceType": "OperationOutcome", "issue": [{}, {}]})
    assert bare is not None and describe_issues(bare) == "unknown unknown (and 1 more issues)"


@pytest.mark.parametrize(
    "body",
    [b"", b"<html>", b"[]", b'{"resourceType": "Patient"}', b'{"resourceType": "OperationOutcome"}',
     b'{"resourceType": "OperationOutcome", "issue": ["x"]}'],
)  # fmt: skip
def test_what_is_not_an_operation_outcome_is_none(body: bytes) -> None:
    assert read_outcome(body) is None


def test_transient_means_every_failing_issue_says_try_again() -> None:
    assert is_transient([Issue("error", "transient", ""), Issue("warning", "processing", "")])
    assert is_transient([Issue("error", "throttled", "")])
    assert not is_transient([Issue("error", "transient", ""), Issue("fatal", "processing", "")])
    assert not is_transient([Issue("error", "processing", "")])


def ndjson(*outcomes: dict[str, object]) -> bytes:
    return b"".join(json.dumps(item).encode() + b"\n" for item in outcomes)


def test_error_files_are_summarised_by_severity_and_code_with_the_first_texts() -> None:
    first = ndjson(
        outcome("not-found", "Patient/1 has no Observations", "warning"),
        outcome("processing", "Observation/9 could not be read"),
    )
    second = (
        b"\n" + ndjson(outcome("processing", "Observation/10 too", "error"))[:-1]
    )  # no final LF
    answers = {f"{BASE}/e1.ndjson": first, f"{BASE}/e2.ndjson": second}
    script = Script(lambda request: httpx.Response(200, content=answers[str(request.url)]))
    summary = summarise_error_files(
        script.client(), options(), list(answers), clock=FakeClock().clock
    )
    assert (summary.files, summary.outcomes) == (2, 3)
    assert summary.by_severity == (("error", 2), ("warning", 1))
    assert summary.by_code == (("processing", 2), ("not-found", 1))
    assert summary.first_texts[0] == "warning not-found: Patient/1 has no Observations"
    assert summary.fails_run
    assert summary.describe() == (
        "3 OperationOutcomes in 2 error files: 2 error, 1 warning "
        "(codes: 2 processing, 1 not-found)"
    )
    assert all(r.headers["Accept"] == "application/fhir+ndjson" for r in script.requests)


def test_warnings_alone_do_not_fail_a_run() -> None:
    tally = ErrorTally()
    tally.add_line("e", 1, json.dumps(outcome("informational", "fyi", "information")).encode())
    assert not tally.summary().fails_run


def test_a_line_that_is_not_an_outcome_names_its_file_and_line() -> None:
    body = ndjson(outcome("processing")) + b"{not json\n"
    script = Script(httpx.Response(200, content=body))
    with pytest.raises(ProtocolError, match=rf"error file {BASE}/e.ndjson line 2: not an"):
        summarise_error_files(
            script.client(), options(), [f"{BASE}/e.ndjson"], clock=FakeClock().clock
        )


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("120", 120.0), ("0", 0.0), ("-3", 0.0), ("soon", None), ("nan", None)],
)
def test_retry_after_in_seconds(value: str, seconds: float | None) -> None:
    response = httpx.Response(202, headers={"Retry-After": value})
    assert retry_after_seconds(response, FakeClock().clock) == seconds


def test_retry_after_as_an_epoch_timestamp_is_read_as_one() -> None:
    clock = FakeClock()
    response = httpx.Response(429, headers={"Retry-After": str(int(clock.now) + 30)})
    assert retry_after_seconds(response, clock.clock) == 30
