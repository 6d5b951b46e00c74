"""NdjsonCountingParser on edge cases: what is counted, under which key, and the bad rows."""

from __future__ import annotations

import json
from typing import Any

import pytest

from export_tally.core.aggregation import BodyResult
from export_tally.core.counts.parser import CountAggregator
from export_tally.core.counts.tally import NO_PATIENT, Tally
from export_tally.core.ndjson import (
    NdjsonBadRowError,
    NdjsonCountingParser,
    NdjsonFormatError,
)
from tests.support.feeding import feed_all, one_byte_at_a_time


def observation(patient: str = "P1", loinc: str = "8867-4", **fields: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {
            "coding": [{"system": "http://loinc.org", "code": loinc, "display": "Heart rate"}],
            "text": "heart_rate",
        },
        "subject": {"reference": f"Patient/{patient}"},
        "valueQuantity": {"value": 72, "unit": "/min"},
    }
    resource.update(fields)
    return resource


def line(resource: object) -> bytes:
    return json.dumps(resource, ensure_ascii=False).encode("utf-8")


def count(body: bytes, *chunks_or_none: list[bytes], **options: Any) -> BodyResult[Tally]:
    chunks = chunks_or_none[0] if chunks_or_none else [body]
    return feed_all(NdjsonCountingParser(**options), chunks)


OBS = line(observation())
OBS_P2 = line(observation("P2"))


@pytest.mark.parametrize(
    ("body", "expected_rows"),
    [
        pytest.param(b"", 0, id="empty-body"),
        pytest.param(OBS, 1, id="no-final-newline"),
        pytest.param(OBS + b"\n", 1, id="final-newline"),
        pytest.param(OBS + b"\r\n" + OBS + b"\r\n", 2, id="crlf"),
        pytest.param(b"\n\n" + OBS + b"\n \t\r\n\r\n" + OBS, 2, id="blank-lines-are-not-rows"),
        pytest.param(b"\xef\xbb\xbf" + OBS + b"\n" + OBS, 2, id="bom"),
        pytest.param(b"  " + OBS + b"  \t\r\n", 1, id="whitespace-around-the-object"),
    ],
)
def test_bodies_count_their_observations(body: bytes, expected_rows: int) -> None:
    result = count(body)
    assert result.rows == expected_rows
    assert result.aggregate == Tally(
        {("P1", "8867-4"): expected_rows} if expected_rows else {},
        {"8867-4": "Heart rate"} if expected_rows else {},
    )
    assert count(body, one_byte_at_a_time(body)).aggregate == result.aggregate


def test_a_chunk_cut_inside_a_utf8_character_changes_nothing() -> None:
    body = line(observation("Pé", "x€")) + b"\n" + OBS
    for cut in range(len(body)):
        result = count(body, [body[:cut], body[cut:]])
        assert result.aggregate.counts == {("Pé", "x€"): 1, ("P1", "8867-4"): 1}


@pytest.mark.parametrize(
    ("reference", "patient"),
    [
        pytest.param("Patient/P1", "P1", id="relative"),
        pytest.param("https://fhir.example.org/r4/Patient/P1", "P1", id="absolute"),
        pytest.param("Patient/P1/_history/3", "P1", id="versioned"),
        pytest.param("Patient/Patient/P1", "P1", id="the-last-patient-segment"),
        pytest.param("Group/G1", NO_PATIENT, id="a-group"),
        pytest.param("urn:uuid:7f3c", NO_PATIENT, id="a-urn"),
        pytest.param("#p1", NO_PATIENT, id="a-contained-one"),
        pytest.param("Patient/", NO_PATIENT, id="no-id"),
        pytest.param("", NO_PATIENT, id="empty"),
    ],
)
def test_the_subject_reference_names_the_patient(reference: str, patient: str) -> None:
    body = line(observation(subject={"reference": reference}))
    assert count(body).aggregate.counts == {(patient, "8867-4"): 1}


def test_a_resource_naming_no_patient_counts_in_the_totals_only() -> None:
    body = b"\n".join([OBS, line(observation(subject={"reference": "Group/G1"}))])
    tally = count(body).aggregate
    assert tally.without_patient == {"8867-4": 1}
    assert tally.to_report() == {"patients": {"P1": {"8867-4": 1}}, "totals": {"8867-4": 2}}


def test_other_resources_count_under_their_type_for_their_patient() -> None:
    body = b"\n".join(
        [
            line({"resourceType": "Patient", "id": "P1", "subject": {"reference": "Patient/X"}}),
            line({"resourceType": "Condition", "subject": {"reference": "Patient/P1"}}),
            line({"resourceType": "AllergyIntolerance", "patient": {"reference": "Patient/P2"}}),
            line({"resourceType": "Encounter", "subject": {"reference": "Group/G"}, "patient": {"reference": "Patient/P3"}}),
            line({"resourceType": "Practitioner", "id": "D1"}),
            line({"resourceType": "Patient"}),
        ]
    )  # fmt: skip
    assert count(body).aggregate.counts == {
        ("P1", "Patient"): 1,
        ("P1", "Condition"): 1,
        ("P2", "AllergyIntolerance"): 1,
        ("P3", "Encounter"): 1,
        (NO_PATIENT, "Practitioner"): 1,
        (NO_PATIENT, "Patient"): 1,
    }


@pytest.mark.parametrize(
    ("code", "key_mode", "key"),
    [
        pytest.param({"coding": [{"code": "8867-4"}], "text": "hr"}, "code", "8867-4", id="code"),
        pytest.param({"coding": [{"code": "8867-4"}], "text": "hr"}, "text", "hr", id="text"),
        pytest.param({"coding": [{"display": "Heart rate"}]}, "text", "Heart rate", id="text-else-display"),
        pytest.param({"coding": [{"display": "Heart rate"}], "text": ""}, "text", "Heart rate", id="empty-text-is-absent"),
        pytest.param({"coding": [{"code": "a"}, {"code": "b"}]}, "code", "a", id="the-first-coding"),
    ],
)  # fmt: skip
def test_the_key_of_an_observation(code: dict[str, Any], key_mode: str, key: str) -> None:
    body = line(observation(code=code))
    assert count(body, key_mode=key_mode).aggregate.counts == {("P1", key): 1}


@pytest.mark.parametrize("key_mode", ["code", "text"])
def test_escapes_decode_to_the_same_key(key_mode: str) -> None:
    body = (
        rb'{"resourceType":"Observation","subject":{"reference":"Patient\/P\u00e9"},'
        rb'"code":{"coding":[{"code":"a\u00e9\/\"b\\"}],"text":"\ud83d\ude00\t"}}'
    )
    key = 'aé/"b\\' if key_mode == "code" else "\U0001f600\t"
    assert count(body, key_mode=key_mode).aggregate.counts == {("Pé", key): 1}


def test_only_top_level_fields_count_and_the_last_of_a_repeated_key_wins() -> None:
    body = (
        b'{"subject":{"reference":"Patient/WRONG"},"extension":[{"subject":{"reference":'
        b'"Patient/X"},"code":{"coding":[{"code":"X"}]}}],"contained":[{"resourceType":'
        b'"Patient","id":"C"}],"code":{"coding":[{"code":"WRONG"}]},"resourceType":'
        b'"Observation","code":{"text":"t","coding":[{"display":"d","code":"8867-4"}]},'
        b'"subject":{"reference":"Patient/P1","reference":"Patient/P1"}}'
    )
    result = count(body)
    assert result.aggregate == Tally({("P1", "8867-4"): 1}, {"8867-4": "d"})


def test_labels_are_the_first_line_s_display_else_its_text_and_none_by_text() -> None:
    first = line(observation(code={"coding": [{"code": "a"}], "text": "Text A"}))
    second = line(observation("P2", code={"coding": [{"code": "a", "display": "Display A"}]}))
    third = line(observation(code={"coding": [{"code": "b"}]}))
    fourth = line(observation("P2", code={"coding": [{"code": "b", "display": "Display B"}]}))
    body = b"\n".join([first, second, third, fourth])
    assert count(body).aggregate.labels == {"a": "Text A"}  # b's first line has no label
    assert count(body, key_mode="text", on_bad_row="skip").aggregate.labels == {}


BAD_ROWS = [
    pytest.param(b"not json", "not valid JSON", id="not-json"),
    pytest.param(b"[1, 2]", "not a JSON object but a JSON array", id="an-array"),
    pytest.param(b'{"id": "x"}', "JSON object has no resourceType", id="no-resource-type"),
    pytest.param(b'{"resourceType": 7}', "resourceType is a JSON number", id="a-number-type"),
    pytest.param(b'{"resourceType": ""}', "resourceType is empty", id="an-empty-type"),
    pytest.param(b'{"resourceType": "Observation"}', "no code.coding[0].code", id="no-code"),
    pytest.param(b'{"resourceType": "A"} {"resourceType": "B"}', "not valid JSON", id="two-values"),
    pytest.param(b'{"resourceType": "A", "x": "\xff"}', "not valid UTF-8", id="invalid-utf8"),
    pytest.param(b'{"resourceType": "A", "x": "a\x01"}', "not valid JSON", id="control-char"),
    pytest.param(b"\x0c" + OBS, "not valid JSON", id="form-feed-is-not-whitespace"),
]


@pytest.mark.parametrize(("bad", "reason"), BAD_ROWS)
def test_a_bad_row_fails_with_its_line_number(bad: bytes, reason: str) -> None:
    body = b"\n".join([OBS, b"", bad, OBS])
    with pytest.raises(NdjsonBadRowError, match=r"^bad row at line 3: ") as caught:
        count(body)
    assert reason in caught.value.reason
    assert caught.value.line_number == 3


@pytest.mark.parametrize(("bad", "reason"), BAD_ROWS)
def test_a_skipped_bad_row_is_a_row_left_out(bad: bytes, reason: str) -> None:
    body = b"\n".join([OBS, b"", bad, OBS_P2, OBS])
    for piece_lines in (1, 2, 256):
        result = count(body, on_bad_row="skip", piece_lines=piece_lines)
        assert (result.rows, result.skipped, result.skipped_lines) == (4, 1, (3,))
        assert result.aggregate.counts == {("P1", "8867-4"): 2, ("P2", "8867-4"): 1}


def test_a_type_not_asked_for_is_a_bad_row() -> None:
    body = b"\n".join([OBS, line({"resourceType": "Condition"})])
    with pytest.raises(NdjsonBadRowError, match="'Condition' is not among those asked for"):
        count(body, types=frozenset({"Observation"}))
    assert count(body, types=frozenset({"Observation", "Condition"})).rows == 2


def test_skipped_lines_keep_the_first_five() -> None:
    body = b"\n".join([b"x"] * 8)
    result = count(body, on_bad_row="skip")
    assert (result.rows, result.skipped, result.skipped_lines) == (8, 8, (1, 2, 3, 4, 5))


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('{"resourceType":"Condition","x":NaN}', id="nan"),
        pytest.param('{"resourceType":"Condition","x":"\\ud800"}', id="lone-surrogate"),
        pytest.param('{"resourceType":"Condition","x":1' + "0" * 5000 + "}", id="huge-int"),
        pytest.param('{"resourceType":"Condition","x":' + "[" * 500 + "]" * 500 + "}", id="deep"),
    ],
)
def test_lines_msgspec_refuses_but_json_takes_are_counted(text: str) -> None:
    assert count(text.encode()).aggregate.counts == {(NO_PATIENT, "Condition"): 1}


def test_a_line_nested_beyond_every_decoder_s_limit_is_a_bad_row() -> None:
    body = ('{"resourceType":"A","x":' + "[" * 5000 + "]" * 5000 + "}").encode()
    with pytest.raises(NdjsonBadRowError, match="nested too deeply"):
        count(body)


def test_plain_lines_take_the_fast_path_and_a_patient_does_not() -> None:
    parser = NdjsonCountingParser()
    result = feed_all(parser, [b"\n".join([OBS] * 5 + [OBS_P2] * 5)])
    assert parser.fast_rows == result.rows == 10
    parser = NdjsonCountingParser(piece_lines=5)
    feed_all(parser, [b"\n".join([OBS] * 5 + [line({"resourceType": "Patient", "id": "P"})])])
    assert parser.fast_rows == 5


ASKED = frozenset({"Observation", "Patient"})


def test_with_the_types_asked_for_patients_take_the_fast_path_too() -> None:
    # Tagged forms: a Patient's holds its id, so it counts without going one by one.
    parser = NdjsonCountingParser(types=ASKED)
    patients = [line({"resourceType": "Patient", "id": f"P{n}"}) for n in (1, 2, 2)]
    result = feed_all(parser, [b"\n".join([OBS, *patients, OBS_P2])])
    assert parser.fast_rows == result.rows == 5
    assert result.aggregate.counts == {
        ("P1", "8867-4"): 1,
        ("P1", "Patient"): 1,
        ("P2", "Patient"): 2,
        ("P2", "8867-4"): 1,
    }


@pytest.mark.parametrize("types", [None, ASKED], ids=["any-type", "tagged"])
def test_an_observation_whose_subject_names_no_patient_reads_its_patient_field(
    types: frozenset[str] | None,
) -> None:
    # The tagged Observation form leaves `patient` out (FHIR's Observation has none); when the
    # subject names no patient, the line goes one by one, where the rules read it.
    elsewhere = observation(subject={"reference": "Group/G1"})
    elsewhere["patient"] = {"reference": "Patient/P9"}
    parser = NdjsonCountingParser(types=types)
    result = feed_all(parser, [b"\n".join([OBS, line(elsewhere), OBS])])
    assert result.aggregate.counts == {("P1", "8867-4"): 2, ("P9", "8867-4"): 1}
    assert parser.fast_rows == (3 if types is None else 1)  # the last line: a piece of its own


def test_a_line_longer_than_the_limit_fails() -> None:
    parser = NdjsonCountingParser(max_line_bytes=10)
    parser.feed(b"0123456789")
    with pytest.raises(NdjsonFormatError, match=r"^line 1 is longer than 10 bytes$"):
        parser.feed(b"x")


def test_a_finished_parser_is_spent() -> None:
    parser = NdjsonCountingParser()
    parser.finish()
    with pytest.raises(RuntimeError):
        parser.feed(OBS)


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"key_mode": "display"}, id="key-mode"),
        pytest.param({"on_bad_row": "ignore"}, id="on-bad-row"),
        pytest.param({"piece_lines": 0}, id="piece-lines"),
        pytest.param({"max_line_bytes": 0}, id="max-line-bytes"),
    ],
)
def test_bad_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        NdjsonCountingParser(**options)


def test_the_aggregator_round_trips_counts_and_labels() -> None:
    aggregator = CountAggregator("skip", "code", frozenset({"Observation", "Patient"}))
    assert aggregator.key == "counts/skip/code/Observation,Patient"
    tally = feed_all(aggregator.new_parser("ndjson"), [OBS + b"\n" + OBS_P2]).aggregate
    data = json.loads(json.dumps(aggregator.to_json(tally)))
    assert aggregator.from_json(data) == tally
    assert aggregator.merge([tally, tally]).counts == {("P1", "8867-4"): 2, ("P2", "8867-4"): 2}
    assert aggregator.report(tally, 1) == tally.to_report()
    with pytest.raises(TypeError):
        aggregator.merge([tally, object()])  # type: ignore[list-item]
