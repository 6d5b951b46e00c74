"""`cli --fhir` against a fixture server replaying the Synthea sample (a real server's export).

Counts exact per patient per code (a naive json.loads counter written apart is the oracle), the
manifest's quirky `continuesInFile` ignored, error and deleted files told, a resource naming no
patient counted in the totals and told, a run that fails after the kick-off rerun on the same
job, and a "come back in three hours" reported, then capped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from export_tally.transport.client import ClientOptions, make_client
from export_tally.transport.fhir_bulk import ExportRequest
from export_tally.transport.fhir_source import FhirSource
from tests.support.cli_run import run_cli
from tests.support.fhir_reference import count_body
from tests.support.fhir_replay import SAMPLE, STATUS_PATH, Replay, fhir_replay, load_sample
from tests.support.hostile_text import WORST, parses_as_xml, raw_controls, svgs_of

OBSERVATION_FILES = ("2.Observation.ndjson", "4.Observation.ndjson")
KICK_OFF = "/fhir/Patient/$export?_type=Observation"


@pytest.fixture
def replay() -> Replay:
    return load_sample()


@pytest.fixture
def served(replay: Replay) -> Iterator[str]:
    with fhir_replay(replay) as base:
        yield base


def expected(key_mode: str, names: tuple[str, ...] = OBSERVATION_FILES) -> dict[str, Any]:
    """What the naive counter finds in these files of the sample, as the tool reports it."""
    patients: dict[str, dict[str, int]] = {}
    totals: dict[str, int] = {}
    for name in names:
        found = count_body((SAMPLE / name).read_bytes(), key_mode)
        for (patient, key), n in found.counts.items():
            by_key = patients.setdefault(patient, {})
            by_key[key] = by_key.get(key, 0) + n
            totals[key] = totals.get(key, 0) + n
    return {"patients": patients, "totals": totals}


def methods(replay: Replay) -> list[tuple[str, str]]:
    return [(method, path) for method, path in replay.seen if not path.startswith("/fhir/bulk")]


@pytest.mark.parametrize("key_mode", ["code", "text"])
def test_the_sample_is_counted_exactly_and_the_job_deleted(
    replay: Replay, served: str, key_mode: str
) -> None:
    outcome = run_cli("--fhir", served, "--key", key_mode)
    assert outcome.status == 0, outcome.stderr
    assert outcome.json() == expected(key_mode)
    # continuesInFile named 3.Observation.ndjson: never fetched; the Patient file not asked for.
    fetched = sorted(path for _, path in replay.seen if path.startswith("/fhir/bulkfiles/"))
    assert fetched == [f"/fhir/bulkfiles/{name}" for name in OBSERVATION_FILES]
    assert methods(replay) == [("GET", KICK_OFF), *[("GET", STATUS_PATH)] * 3,
                               ("DELETE", STATUS_PATH)]  # fmt: skip
    assert "not asked for, not counted: Patient" in outcome.stderr


def test_a_run_that_failed_after_the_kick_off_is_rerun_on_the_same_job(
    replay: Replay, served: str, tmp_path: Path
) -> None:
    replay.failing.add(OBSERVATION_FILES[1])
    argv = ("--fhir", served, "--checkpoint-dir", str(tmp_path / "kept"), "-j", "1")
    failed = run_cli(*argv, "--retries", "0")
    assert failed.status == 3, failed.stderr
    assert methods(replay) == [("GET", KICK_OFF), *[("GET", STATUS_PATH)] * 3]

    replay.failing.clear()
    replay.seen.clear()
    rerun = run_cli(*argv)
    assert rerun.status == 0, rerun.stderr
    assert rerun.json() == expected("code")
    assert f"polling the export job a previous run started: {served}/jobs/1" in rerun.stderr
    # No kick-off: the job the first run started was polled, its files counted, then deleted.
    assert methods(replay) == [("GET", STATUS_PATH), ("DELETE", STATUS_PATH)]
    fetched = [path for _, path in replay.seen if path.startswith("/fhir/bulkfiles/")]
    assert fetched == [f"/fhir/bulkfiles/{OBSERVATION_FILES[1]}"]  # the other from a checkpoint


def test_resume_job_polls_the_job_given(replay: Replay, served: str) -> None:
    outcome = run_cli("--fhir", served, "--resume-job", f"{served}/jobs/1", "--keep-job")
    assert outcome.status == 0, outcome.stderr
    assert outcome.json() == expected("code")
    assert methods(replay) == [("GET", STATUS_PATH)] * 3  # no kick-off, no DELETE


def outcome_line(severity: str, text: str) -> bytes:
    issue = {"severity": severity, "code": "processing", "diagnostics": text}
    return json.dumps({"resourceType": "OperationOutcome", "issue": [issue]}).encode() + b"\n"


def test_error_outcomes_fail_the_run_unless_bad_rows_are_skipped(
    replay: Replay, served: str
) -> None:
    replay.add_error_file("e.ndjson", outcome_line("error", "Observation/x \x1b[31mbad") +
                          outcome_line("warning", "a warning"))  # fmt: skip
    failed = run_cli("--fhir", served)
    assert failed.status == 4, failed.stderr
    assert "2 OperationOutcomes in 1 error file: 1 error, 1 warning" in failed.stderr
    assert "\x1b" not in failed.stderr  # server text is only data
    assert failed.stdout == ""
    assert ("DELETE", STATUS_PATH) not in replay.seen

    skipped = run_cli("--fhir", served, "--on-bad-row", "skip")
    assert skipped.status == 0, skipped.stderr
    assert skipped.json() == expected("code")
    assert "error processing: Observation/x" in skipped.stderr


def test_deleted_entries_error_files_and_displays_in_the_table_and_the_report(
    replay: Replay, served: str, tmp_path: Path
) -> None:
    replay.add_error_file("e.ndjson", outcome_line("warning", "Observation/y <b>left out</b>"))
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "DELETE", "url": "Observation/a"}},
        {"request": {"method": "DELETE", "url": f"{served}/Observation/b"}},
        {"request": {"method": "DELETE", "url": "Patient/c"}},
    ]}  # fmt: skip
    replay.add_deleted_file("d.ndjson", json.dumps(bundle).encode() + b"\n")
    report = tmp_path / "r.html"
    outcome = run_cli("--fhir", served, "--report", str(report), "--format", "table")
    assert outcome.status == 0, outcome.stderr  # a warning does not fail the run
    assert outcome.stdout.startswith("events per patient and event type")
    told = "lists 3 deleted resources (2 Observation, 1 Patient)"
    assert told in outcome.stderr
    page = report.read_text()
    for code, display in (("8302-2", "Body Height"), ("29463-7", "Body Weight")):
        assert f"{code} ({display})" in page  # the codes with their real display texts
        first, last = display.split()
        assert f"({first}" in outcome.stdout and f"{last})" in outcome.stdout  # the table's header
    assert '<span class="id">Patient</span>' in page  # what was exported: Patient/$export
    assert "Server notes" in page and told in page
    assert "1 OperationOutcome in 1 error file: 1 warning" in page
    assert "&lt;b&gt;left out&lt;/b&gt;" in page  # the diagnostics, escaped


def test_a_resource_naming_no_patient_is_in_the_totals_and_told(
    replay: Replay, served: str
) -> None:
    lines = (SAMPLE / OBSERVATION_FILES[1]).read_bytes().splitlines(keepends=True)
    orphan = json.loads(lines[0])
    del orphan["subject"]
    replay.files[OBSERVATION_FILES[1]] = b"".join([*lines, json.dumps(orphan).encode() + b"\n"])
    replay.manifest["output"][1]["count"] += 1
    outcome = run_cli("--fhir", served)
    assert outcome.status == 0, outcome.stderr
    want = expected("code")
    code = orphan["code"]["coding"][0]["code"]
    want["totals"][code] += 1
    assert outcome.json() == want
    assert f"1 resource(s) name no patient: counted in the totals only (1 {code})" in outcome.stderr


def test_a_declared_count_that_is_not_met_fails(replay: Replay, served: str) -> None:
    replay.manifest["output"][1]["count"] += 1
    outcome = run_cli("--fhir", served)
    assert outcome.status == 4
    assert "counted 6315 rows but the metadata declares 6316, twice" in outcome.stderr


@pytest.mark.slow
@pytest.mark.parametrize("content_type", ["application/ndjson", "application/x-ndjson"])
def test_ndjson_under_its_other_names_is_counted(
    replay: Replay, served: str, content_type: str
) -> None:
    replay.file_type = content_type
    outcome = run_cli("--fhir", served)
    assert (outcome.status, outcome.json()) == (0, expected("code"))


@pytest.mark.parametrize("content_type", ["application/fhir+json", "text/html; charset=utf-8"])
def test_a_file_that_is_not_ndjson_fails(replay: Replay, served: str, content_type: str) -> None:
    replay.file_type = content_type
    outcome = run_cli("--fhir", served)
    assert outcome.status == 4
    assert f"answered {content_type.split(';')[0]} instead of NDJSON" in outcome.stderr


def test_come_back_in_three_hours_is_reported_then_capped(replay: Replay, served: str) -> None:
    replay.retry_after = "10800"
    told: list[str] = []
    options = ClientOptions(served)
    with make_client(options) as client:
        source = FhirSource(client, options, ExportRequest(), say=told.append, max_poll_wait=0.01)
        files = source.files()
    assert [f.id for f in files] == list(OBSERVATION_FILES)
    assert [f.rows for f in files] == [10000, 6315]
    assert told[1] == ("the server asks to be polled again in 10800 s; polling every 0.01 s "
                       "instead (--max-outage still bounds an outage)")  # fmt: skip


@pytest.mark.slow
def test_a_remembered_job_that_is_gone_is_said_and_replaced(
    replay: Replay, served: str, tmp_path: Path
) -> None:
    replay.failing.add(OBSERVATION_FILES[0])
    argv = ("--fhir", served, "--checkpoint-dir", str(tmp_path / "kept"))
    assert run_cli(*argv, "--retries", "0").status == 3
    replay.failing.clear()
    replay.deleted = True  # the server dropped the job meanwhile (expired)
    replay.seen.clear()
    rerun = run_cli(*argv)
    assert rerun.status == 0, rerun.stderr
    assert rerun.json() == expected("code")
    assert "the export job is gone" in rerun.stderr and "starting a new export" in rerun.stderr
    assert methods(replay)[:2] == [("GET", STATUS_PATH), ("GET", KICK_OFF)]


def hostile_observation(patient: str, code: str, display: str) -> bytes:
    resource = {"resourceType": "Observation", "subject": {"reference": f"Patient/{patient}"},
                "code": {"coding": [{"code": code, "display": display}]}}  # fmt: skip
    return json.dumps(resource).encode() + b"\n"


@pytest.mark.slow
def test_hostile_codes_displays_and_ids_are_only_data(
    replay: Replay, served: str, tmp_path: Path
) -> None:
    """Issue 24 on the FHIR path: codes, displays and ids that carry markup and escapes."""
    lines = [
        hostile_observation(patient, code, display)
        for patient in WORST["patients"][:3]
        for code, display in zip(WORST["types"], ["<script>alert(1)</script>", "x\x1b]0;t\x07",
                                                  "</svg>\u202e", "=1+1"], strict=True)
    ]  # fmt: skip
    replay.files[OBSERVATION_FILES[1]] = b"".join(lines)
    replay.manifest["output"][1]["count"] = len(lines)
    report = tmp_path / "r.html"
    as_json = run_cli("--fhir", served, "--no-checkpoint")
    assert as_json.status == 0, as_json.stderr
    assert as_json.json()["patients"][WORST["patients"][0]][WORST["types"][0]] == 1  # exact
    table = run_cli("--fhir", served, "--format", "table", "--report", str(report))
    assert table.status == 0, table.stderr
    assert not raw_controls(table.stdout) and not raw_controls(table.stderr)
    page = report.read_text()
    assert "<script>" not in page and "onerror=" not in page
    assert all(parses_as_xml(svg) for svg in svgs_of(page))
