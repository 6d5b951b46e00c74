"""The FHIR run's pieces without sockets: --fhir resolved into Settings, the counting aggregator's
NDJSON parsers and checkpoint JSON, a source's note in the checkpoint store, labelled names."""

from __future__ import annotations

from pathlib import Path

import pytest

from export_tally.cli.settings import FhirChoices, parse
from export_tally.core.counts.parser import CountAggregator, CountingParser
from export_tally.core.counts.tally import Tally
from export_tally.core.ndjson import NdjsonCountingParser
from export_tally.errors import ProtocolError, UsageError
from export_tally.render.labels import with_labels
from export_tally.render.report.facts import shown_options
from export_tally.scheduling.checkpoint import CheckpointStore
from export_tally.transport.fhir_bulk import ExportRequest
from export_tally.transport.fhir_deleted import deleted_types
from export_tally.transport.fhir_manifest import ExportFile, Manifest
from export_tally.transport.fhir_source import remote_files

OBSERVATION = (
    b'{"resourceType":"Observation","subject":{"reference":"Patient/P1"},'
    b'"code":{"coding":[{"code":"8867-4","display":"Heart rate"}],"text":"hr"}}\n'
)


def test_fhir_settings_with_a_group_and_types_given_twice_and_comma_separated() -> None:
    settings = parse(["--fhir", "https://ehr.example/fhir/", "g1", "--type", "Observation,Patient",
                      "--type", "Patient", "--key", "text", "--keep-job"], {})  # fmt: skip
    assert settings.server_url == "https://ehr.example/fhir"
    assert settings.server_explicit  # a FHIR server is never replaced by the bundled mock
    assert settings.fhir == FhirChoices(
        ExportRequest("g1", ("Observation", "Patient")), "text", keep_job=True
    )


def test_fhir_settings_default_to_patient_level_observations_by_code() -> None:
    settings = parse(["--fhir", "http://h/fhir"], {})
    assert settings.fhir == FhirChoices(ExportRequest(None, ("Observation",)))
    assert settings.fhir.request.path() == "/Patient/$export?_type=Observation"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--fhir", "ftp://h"], "--fhir 'ftp://h' is not an http:// or https:// URL"),
        (["--fhir", "http://h", "--resume-job", "jobs/1"], "--resume-job 'jobs/1' is not an"),
        (["--fhir", "http://h", "--list"], "--fhir and --list cannot be used together"),
        (["--fhir", "http://h", "bad/group"], "group id 'bad/group'"),
        (["demo", "--key", "text"], "--key needs --fhir BASE_URL"),
        (["demo", "--since", "2024-01-01T00:00:00Z"], "--since needs --fhir BASE_URL"),
    ],
)
def test_fhir_usage_errors(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError, match="^" + message.replace("(", r"\(")):
        parse(argv, {})


def test_the_counting_aggregator_makes_a_parser_per_format() -> None:
    ndjson = CountAggregator("skip", "text", frozenset({"Observation"}))
    assert isinstance(ndjson.new_parser("csv"), CountingParser)
    parser = ndjson.new_parser("ndjson")
    assert isinstance(parser, NdjsonCountingParser)
    parser.feed(OBSERVATION + b"not json\n")
    result = parser.finish()
    assert (dict(result.aggregate.counts), result.skipped) == ({("P1", "hr"): 1}, 1)
    with pytest.raises(ProtocolError, match="no parser for files of format 'xml'"):
        ndjson.new_parser("xml")


def test_checkpoint_keys_differ_by_key_mode_and_types_but_not_for_csv() -> None:
    assert CountAggregator().key == "counts/fail"  # CSV checkpoints made before stay valid
    keys = {
        CountAggregator(key_mode=mode, types=types).key
        for mode in ("code", "text")
        for types in (frozenset({"Observation"}), frozenset({"Observation", "Patient"}))
    }
    assert len(keys) == 4 and "counts/fail" not in keys


def test_checkpoint_json_keeps_labels_and_reads_the_old_form() -> None:
    aggregator = CountAggregator()
    labelled = Tally({("P1", "8867-4"): 2}, {"8867-4": "Heart rate"})
    assert aggregator.from_json(aggregator.to_json(labelled)) == labelled
    plain = Tally({("P1", "hr"): 2})
    assert aggregator.to_json(plain) == [["P1", "hr", 2]]
    assert aggregator.from_json([["P1", "hr", 2]]) == plain


def test_a_source_s_note_is_kept_trusted_and_forgotten(tmp_path: Path) -> None:
    warnings: list[str] = []
    store = CheckpointStore(tmp_path, "http://s/fhir", CountAggregator(), warnings.append)
    assert store.recall("fhir-job /Patient/$export") is None
    store.remember("fhir-job /Patient/$export", "http://s/fhir/jobs/1")
    again = CheckpointStore(tmp_path, "http://s/fhir", CountAggregator(), warnings.append)
    assert again.recall("fhir-job /Patient/$export") == "http://s/fhir/jobs/1"
    assert again.recall("fhir-job /Group/g/$export") is None
    other_server = CheckpointStore(tmp_path, "http://t/fhir", CountAggregator(), warnings.append)
    assert other_server.recall("fhir-job /Patient/$export") is None
    (path,) = tmp_path.glob("*.json")
    path.write_text(path.read_text().replace("jobs/1", "jobs/2"))
    assert again.recall("fhir-job /Patient/$export") is None
    assert "altered" in warnings[-1]
    again.forget("fhir-job /Patient/$export")
    assert list(tmp_path.glob("*.json")) == []


def test_manifest_files_become_ndjson_files_with_optional_rows() -> None:
    manifest = Manifest("2024-01-01T00:00:00Z", "r", False, (
        ExportFile("http://s/files/a/Observation.ndjson", "Observation", 5),
        ExportFile("http://s/files/b/Observation.ndjson", "Observation", None),
    ), (), ())  # fmt: skip
    files = remote_files(ExportRequest("g"), manifest)
    assert [(f.id, f.rows, f.format, f.export_id) for f in files] == [
        ("http://s/files/a/Observation.ndjson", 5, "ndjson", "Group/g"),  # names clash: URLs
        ("http://s/files/b/Observation.ndjson", None, "ndjson", "Group/g"),
    ]
    assert files[0].key != files[1].key


def test_labels_name_event_types_for_people_unless_two_would_merge() -> None:
    report = {"patients": {"P1": {"a": 1, "b": 2}}, "totals": {"a": 1, "b": 2}}
    assert with_labels(report, {}) is report
    assert with_labels(report, {"a": "Alpha", "b": "b"}) == {
        "patients": {"P1": {"a (Alpha)": 1, "b": 2}}, "totals": {"a (Alpha)": 1, "b": 2},
    }  # fmt: skip
    clash = {"patients": {}, "totals": {"a": 1, "a (x)": 2}}
    assert with_labels(clash, {"a": "x"}) is clash


@pytest.mark.parametrize(
    ("bundle", "types"),
    [
        ({"resourceType": "Bundle", "entry": [{"request": {"url": "Observation/1"}},
          {"request": {"url": "http://s/fhir/Patient/2?x=1"}}]}, ["Observation", "Patient"]),
        ({"resourceType": "Bundle"}, []),
        ({"resourceType": "Bundle", "entry": [{"request": {"url": "1"}}]}, ["unknown"]),
        ({"resourceType": "Bundle", "entry": [{"request": {}}]}, None),
        ({"resourceType": "Bundle", "entry": {}}, None),
        ({"resourceType": "Observation"}, None),
        ([], None),
    ],
)  # fmt: skip
def test_deleted_bundles_name_their_resources_types(
    bundle: object, types: list[str] | None
) -> None:
    assert deleted_types(bundle) == types


def test_a_report_shows_the_fhir_options_as_flags_without_secrets() -> None:
    settings = parse(["--fhir", "https://u:pw@ehr.example/fhir?key=s", "g", "--type", "Patient,"
                      "Observation", "--type", "Condition", "--keep-job"], {})  # fmt: skip
    assert shown_options(settings.given) == (
        "--fhir https://ehr.example/fhir", "--type Patient,Observation,Condition", "--keep-job",
    )  # fmt: skip
