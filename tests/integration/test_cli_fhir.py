"""`cli --fhir BASE_URL GROUP` against the mock server's FHIR routes, over real sockets.

demo exact by both keys (its `code.text` is the CSV event type, its coding the LOINC code), the
job deleted after success or kept with --keep-job, held jobs polled by Retry-After with
X-Progress on the progress line, and faults on every route survived exactly.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from tests.support.cli_run import one_line, run_cli
from tests.support.servers import RunningServer, StartServer

ROOT = Path(__file__).parent.parent.parent
DEMO = ROOT / "demo.json"
CODES = {"bp_sys": "8480-6", "bp_dia": "8462-4"}  # the mock's LOINC codings of demo's types
STATUS = re.compile(r"(?:started the export of \S+: polling|deleted the export job|kept the "
                    r"export job) (http://\S+)")  # fmt: skip


def status_urls(stderr: str) -> set[str]:
    """The export job URLs the tool named on stderr."""
    return set(STATUS.findall(stderr))


def by_code(report: dict[str, dict]) -> dict[str, dict]:  # type: ignore[type-arg]
    """demo.json's counts keyed by the LOINC code instead of the event type."""
    return {
        "patients": {
            p: {CODES[e]: n for e, n in by_type.items()}
            for p, by_type in report["patients"].items()
        },
        "totals": {CODES[e]: n for e, n in report["totals"].items()},
    }


def test_demo_by_text_is_demo_json_to_the_byte_and_the_job_is_deleted(
    server: RunningServer,
) -> None:
    outcome = run_cli("--fhir", f"{server.url}/fhir", "demo", "--key", "text")
    assert outcome.status == 0, outcome.stderr
    assert outcome.stdout == DEMO.read_text()
    (job,) = status_urls(outcome.stderr)
    assert f"deleted the export job {job}" in outcome.stderr
    assert httpx.get(job).status_code == 404  # DELETE'd: the server forgot it


def test_demo_by_code_and_a_kept_job(server: RunningServer) -> None:
    outcome = run_cli("--fhir", f"{server.url}/fhir/", "demo", "--keep-job", "--format", "json")
    assert outcome.status == 0, outcome.stderr
    assert outcome.json() == by_code(json.loads(DEMO.read_text()))
    (job,) = status_urls(outcome.stderr)
    assert f"kept the export job {job} (--keep-job)" in outcome.stderr
    kept = httpx.get(job)
    assert kept.status_code == 200 and len(kept.json()["output"]) == 2  # demo's two files
    httpx.delete(job)


@pytest.mark.slow
def test_patients_are_counted_under_their_type_and_no_file_is_split(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight workers for three files that the server would serve by range: NDJSON files are
    never cut into byte ranges (the CSV cutter's records are not NDJSON's lines)."""
    monkeypatch.setenv("EXPORT_TALLY_IN_PROCESS_ROWS", "0")
    outcome = run_cli("--fhir", f"{server.url}/fhir", "demo", "--type", "Patient", "--type",
                      "Observation", "--key", "text", "--no-checkpoint", "-j", "8",
                      "--min-part-bytes", "1000")  # fmt: skip
    assert outcome.status == 0, outcome.stderr
    assert "byte-range" not in outcome.stderr
    expected = json.loads(DEMO.read_text())
    for counts in expected["patients"].values():
        counts["Patient"] = 1
    expected["totals"]["Patient"] = len(expected["patients"])
    assert outcome.json() == expected


@pytest.mark.slow
def test_demo_statistics_by_text_are_the_csv_statistics(server: RunningServer) -> None:
    """The mock's Observations carry the CSV rows' values and times: the same statistics."""
    outcome = run_cli("--fhir", f"{server.url}/fhir", "demo", "--key", "text", "--stats")
    assert outcome.status == 0, outcome.stderr
    assert outcome.stdout == (ROOT / "examples" / "demo.stats.json").read_text()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--stats", "--type", "Patient"], "--stats reads Observations' values: with --fhir it"),
        (["--server", "http://127.0.0.1:1"], "--fhir and --server cannot be used together"),
        (["--type", "observation"], "--type 'observation' is not a FHIR resource type"),
        (["--since", "yesterday"], "--since 'yesterday' is not a FHIR instant"),
    ],
)
def test_usage_errors(argv: list[str], message: str) -> None:
    outcome = run_cli("--fhir", "http://127.0.0.1:1/fhir", "demo", *argv)
    assert outcome.status == 2
    assert message in one_line(outcome.stderr)


def test_a_flag_of_fhir_without_it_is_a_usage_error() -> None:
    outcome = run_cli("demo", "--keep-job")
    assert (outcome.status, one_line(outcome.stderr)) == (
        2,
        "cli: error: --keep-job needs --fhir BASE_URL",
    )


def test_an_unknown_group_says_so(server: RunningServer) -> None:
    outcome = run_cli("--fhir", f"{server.url}/fhir", "nosuch")
    assert outcome.status == 2
    assert "group 'nosuch' not found" in one_line(outcome.stderr)


@pytest.fixture(scope="module")
def held_faulty(server_with: StartServer) -> RunningServer:
    """One server for the module: jobs held a second (polled by Retry-After), and faults on
    every route (500s), every file body cut off (each attempt resumes where the last stopped)."""
    return server_with(
        "--fhir-hold", "1", "--fail-rate", "0.2", "--drop-rate", "1", "--fault-seed", "11",
        "--retry-after", "0",
    )  # fmt: skip


@pytest.mark.parametrize(
    "in_process_rows",
    [
        pytest.param("1000000", marks=pytest.mark.slow, id="in-process"),
        pytest.param("0", id="local-pool"),
    ],
)
@pytest.mark.slow
def test_held_and_faulty_demo_is_exact(
    held_faulty: RunningServer, in_process_rows: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXPORT_TALLY_IN_PROCESS_ROWS", in_process_rows)
    outcome = run_cli("--fhir", f"{held_faulty.url}/fhir", "demo", "--key", "text", "-j", "2",
                      "--progress", "--retries", "8")  # fmt: skip
    assert outcome.status == 0, outcome.stderr
    assert outcome.stdout == DEMO.read_text()
    assert "export job: " in outcome.stderr  # the server's X-Progress while it held the job
    assert "recovered from" in outcome.stderr  # the faults were met, and survived
