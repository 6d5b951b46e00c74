"""CSV rows -> Observation lines: the mapping, its length formula, and the counts it keeps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from export_server.dataset import downloads_of
from export_server.fhir_convert import PieceJob, render
from export_server.fhir_resources import (
    id_prefix,
    ndjson_length,
    observations,
    patient_line,
    rows_after,
    time_key,
)
from export_server.generate import HEADER, generate_chunks
from tests.support.fhir import merge_counts, observation_counts

ROOT = Path(__file__).resolve().parents[2]
ROW = b"P004,2025-08-26T00:00:04.906404Z,bp_sys,71\n"


def demo_rows(index: int) -> bytes:
    return b"".join(generate_chunks(downloads_of("demo")[index]))[len(HEADER) :]


def test_a_row_becomes_an_observation_with_loinc_and_ucum() -> None:
    lines, count = observations(ROW, 7, "demo-0-")
    assert count == 1
    resource = json.loads(lines)
    assert resource == {
        "resourceType": "Observation",
        "id": "demo-0-00000007",
        "meta": {"lastUpdated": "2025-08-26T00:00:04.906404Z"},
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                        "display": "Vital Signs",
                    }
                ]
            }
        ],
        "code": {
            "coding": [
                {
                    "system": "http://loinc.org",
                    "code": "8480-6",
                    "display": "Systolic blood pressure",
                }
            ],
            "text": "bp_sys",
        },
        "subject": {"reference": "Patient/P004"},
        "effectiveDateTime": "2025-08-26T00:00:04.906404Z",
        "valueQuantity": {
            "value": 71,
            "unit": "mmHg",
            "system": "http://unitsofmeasure.org",
            "code": "mm[Hg]",
        },
    }


@pytest.mark.parametrize(
    ("event_type", "code", "unit"),
    [("heart_rate", "8867-4", "/min"), ("spo2", "59408-5", "%"), ("bp_dia", "8462-4", "mm[Hg]")],
)
def test_each_event_type_has_its_loinc_code(event_type: str, code: str, unit: str) -> None:
    row = f"S001,2025-08-26T00:00:04Z,{event_type},99\n".encode()
    resource = json.loads(observations(row, 1, "small-0-")[0])
    assert resource["code"]["coding"][0]["code"] == code
    assert resource["valueQuantity"]["code"] == unit
    assert resource["effectiveDateTime"] == "2025-08-26T00:00:04Z"


def test_an_event_type_without_loinc_code_gets_the_projects_own_code() -> None:
    row = b'P1,2025-08-26T00:00:04Z,100%"odd",5\n'
    resource = json.loads(observations(row, 1, "x%-")[0])
    assert resource["id"] == "x%-00000001"
    assert resource["code"]["text"] == '100%"odd"'
    assert resource["code"]["coding"] == [
        {"system": "urn:export-tally:event-type", "code": '100%"odd"', "display": '100%"odd"'}
    ]
    assert resource["valueQuantity"]["code"] == "1"


def test_row_numbers_keep_their_width_across_ten_thousand() -> None:
    lines, _ = observations(ROW * 4, 9_998, "p-")
    assert [json.loads(line)["id"] for line in lines.splitlines()] == [
        "p-00009998", "p-00009999", "p-00010000", "p-00010001",
    ]  # fmt: skip


def test_demo_counts_equal_the_csv_answer() -> None:
    parts = []
    for index in range(len(downloads_of("demo"))):
        lines, count = observations(demo_rows(index), 1, id_prefix("demo", index))
        parts.append(observation_counts(lines.splitlines()))
        assert count == downloads_of("demo")[index].rows
    expected = json.loads((ROOT / "demo.json").read_text())["patients"]
    assert merge_counts(*parts) == expected


def test_the_length_formula_is_the_length_of_the_lines() -> None:
    rows = demo_rows(1)
    lines, _ = observations(rows, 1, "demo-1-")
    assert ndjson_length(rows, "demo-1-", ("bp_sys", "bp_dia")) == len(lines)


def test_the_length_formula_refuses_rows_of_an_unlisted_type() -> None:
    with pytest.raises(ValueError, match="event type"):
        ndjson_length(ROW, "demo-0-", ("bp_dia",))


times = st.builds(
    lambda s, micro: f"2025-08-26T00:00:{s:02d}" + (f".{micro:06d}Z" if micro else "Z"),
    st.integers(0, 59), st.integers(0, 999_999),
)  # fmt: skip
rows_strategy = st.lists(
    st.tuples(st.sampled_from(["P001", "S12"]), times, st.sampled_from(["bp_sys", "spo2"]),
              st.integers(0, 300)),
    max_size=30,
).map(lambda rows: "".join(f"{p},{t},{e},{v}\n" for p, t, e, v in sorted(rows, key=lambda r: time_key(r[1].encode()))).encode())  # fmt: skip


@settings(max_examples=50, deadline=None)  # no deadline: the machine may be busy
@given(rows_strategy)
def test_the_length_formula_holds_for_any_rows(rows: bytes) -> None:
    lines, count = observations(rows, 1, "g-3-")
    assert ndjson_length(rows, "g-3-", ("bp_sys", "spo2")) == len(lines)
    assert count == rows.count(b"\n")
    for line in lines.splitlines():
        json.loads(line)


@settings(max_examples=50, deadline=None)  # no deadline: the machine may be busy
@given(rows_strategy, times)
def test_since_keeps_exactly_the_later_rows(rows: bytes, since: str) -> None:
    key = time_key(since.encode())
    kept, skipped = rows_after(rows, key)
    lines = rows.splitlines(keepends=True)
    assert kept == b"".join(line for line in lines if time_key(line.split(b",")[1]) > key)
    assert skipped == len(lines) - kept.count(b"\n")
    rendered, count = render(PieceJob("g-", 1, None, key), rows)
    assert count == len(kept.splitlines())
    ids = [json.loads(line)["id"] for line in rendered.splitlines()]
    assert ids == [f"g-{n:08d}" for n in range(skipped + 1, len(lines) + 1)]


def test_keep_leaves_other_patients_out_and_keeps_row_numbers() -> None:
    rows = ROW + ROW.replace(b"P004", b"P001") + ROW
    lines, count = observations(rows, 1, "d-", frozenset({b"P004"}))
    assert count == 2
    assert [json.loads(line)["id"] for line in lines.splitlines()] == ["d-00000001", "d-00000003"]


def test_patient_line() -> None:
    assert json.loads(patient_line("P001", "2025-08-26T00:00:00.000Z")) == {
        "resourceType": "Patient",
        "id": "P001",
        "meta": {"lastUpdated": "2025-08-26T00:00:00.000Z"},
        "identifier": [{"system": "urn:export-tally:patient-id", "value": "P001"}],
    }
