"""--on-bad-row: fail names the line; skip leaves bad rows out, reports them, and still checks rows."""

from __future__ import annotations

import pytest

from export_tally.cli.exitcodes import ExitCode
from tests.support.cli_run import run_cli
from tests.support.fixture_server import export_routes, fixture_server

HEADER = b"patient_id,event_time,event_type,value\n"
GOOD = b"A,t,hr,1\n"


@pytest.mark.parametrize(
    "bad, reason",
    [
        pytest.param(b"B,t,hr\n", "field", id="too-few-fields"),
        pytest.param(b"B,t,hr,1,extra\n", "field", id="too-many-fields"),
        pytest.param(b",t,hr,1\n", "patient_id", id="empty-patient"),
        pytest.param(b"B,t,,1\n", "event_type", id="empty-event-type"),
        pytest.param(b"B\xff,t,hr,1\n", "UTF-8", id="invalid-utf8"),
    ],
)
def test_fail_mode_names_download_and_line(bad: bytes, reason: str) -> None:
    with fixture_server(export_routes("x", {"d1": HEADER + GOOD + bad + GOOD})) as url:
        outcome = run_cli("x", "--server", url)
    assert outcome.status == ExitCode.PROTOCOL
    message = outcome.stderr.strip()
    assert "\n" not in message
    assert "d1" in message and "line 3" in message and reason in message


def test_skip_mode_leaves_bad_rows_out_and_reports_them() -> None:
    body = HEADER + GOOD + b"B,t,hr\n" + GOOD + b",t,hr,1\n"
    with fixture_server(export_routes("x", {"d1": body})) as url:
        outcome = run_cli("x", "--server", url, "--on-bad-row", "skip")
    assert outcome.status == ExitCode.OK, outcome.stderr
    assert outcome.json() == {"patients": {"A": {"hr": 2}}, "totals": {"hr": 2}}
    assert "download d1: skipped 2 bad row(s), first at line(s) 3, 5" in outcome.stderr


def test_skipped_rows_still_count_for_the_integrity_check() -> None:
    body = HEADER + GOOD + b"B,t,hr\n"
    with fixture_server(export_routes("x", {"d1": body}, rows={"d1": 3})) as url:
        outcome = run_cli("x", "--server", url, "--on-bad-row", "skip")
    assert outcome.status == ExitCode.PROTOCOL
    assert "counted 2 rows" in outcome.stderr and "declares 3" in outcome.stderr


def test_a_line_without_end_beyond_the_bound_is_a_protocol_error() -> None:
    body = HEADER + b"A," + b"x" * (2 << 20)
    with fixture_server(export_routes("x", {"d1": body}, rows={"d1": 1})) as url:
        outcome = run_cli("x", "--server", url)
    assert outcome.status == ExitCode.PROTOCOL
    assert "d1" in outcome.stderr
