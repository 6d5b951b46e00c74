"""NdjsonStatsParser: Observations' values and times per (patient, key), against a naive reader."""

from __future__ import annotations

import json
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from export_tally.core.ndjson import NdjsonBadRowError
from export_tally.core.ndjson.statistics import NdjsonStatsParser
from export_tally.core.stats.aggregate import KeyStats, Stats
from export_tally.core.stats.parser import StatsAggregator
from tests.support.feeding import feed_all, one_byte_at_a_time

SAMPLE = Path(__file__).parent.parent / "data" / "fhir" / "synthea-100"
T0 = "2025-08-26T00:00:00Z"


def micros(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1_000_000)


def observation(patient: str, text: str, value: Any, time: str = T0) -> bytes:
    return json.dumps(
        {
            "resourceType": "Observation",
            "code": {"coding": [{"code": "8867-4"}], "text": text},
            "subject": {"reference": f"Patient/{patient}"},
            "effectiveDateTime": time,
            "valueQuantity": {"value": value, "unit": "/min"},
        }
    ).encode()


def naive(lines: list[bytes], key_mode: str) -> Stats:
    """Per key: count, sum, min, max, anomalies, first, last, read plainly with json.loads."""
    found: dict[tuple[str, str], list[Any]] = {}
    for line in lines:
        resource = json.loads(line, parse_float=Fraction)
        key = (
            resource["subject"]["reference"].removeprefix("Patient/"),
            resource["code"]["coding"][0]["code"]
            if key_mode == "code"
            else resource["code"]["text"],
        )
        value = resource["valueQuantity"]["value"]
        time = micros(resource["effectiveDateTime"])
        found.setdefault(key, []).append((value, time))
    ranges = {"heart_rate": (40, 180), "spo2": (85, 100)}
    return Stats(
        {
            key: KeyStats(
                len(pairs),
                sum(v for v, _ in pairs),
                min((v for v, _ in pairs), key=lambda v: (v, isinstance(v, Fraction))),
                max((v for v, _ in pairs), key=lambda v: (v, not isinstance(v, Fraction))),
                sum(
                    1
                    for v, _ in pairs
                    if key[1] in ranges and not ranges[key[1]][0] <= v <= ranges[key[1]][1]
                ),
                min(t for _, t in pairs),
                max(t for _, t in pairs),
            )
            for key, pairs in found.items()
        }
    )


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["P1", "P2"]),
            st.sampled_from(["heart_rate", "spo2"]),
            st.one_of(st.integers(-5, 300), st.decimals(0, 300, places=2).map(float)),
            st.sampled_from([T0, "2025-08-26T01:00:00+02:00", "2024-01-01T00:00:00.5-04:00"]),
        ),
        max_size=12,
    ),
    st.sampled_from(["code", "text"]),
    st.integers(1, 40),
)
def test_matches_a_naive_reader_in_any_chunking(
    rows: list[tuple[str, str, Any, str]], key_mode: str, size: int
) -> None:
    lines = [observation(*row) for row in rows]
    body = b"\n".join(lines)
    chunks = [body[i : i + size] for i in range(0, len(body), size)]
    result = feed_all(NdjsonStatsParser(key_mode), chunks)  # type: ignore[arg-type]
    assert result.aggregate == naive(lines, key_mode)
    assert result.rows == len(lines)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        pytest.param(observation("P1", "hr", "72"), "no number", id="a-string-value"),
        pytest.param(observation("P1", "hr", None), "no number", id="a-null-value"),
        pytest.param(observation("P1", "hr", 72, "2025-08-26"), "UTC offset", id="a-date"),
        pytest.param(observation("P1", "hr", 72, "2025-08-26T00:00:00"), "UTC offset", id="no-offset"),
        pytest.param(b'{"resourceType":"Patient","id":"P1"}', "not among those", id="a-patient"),
        pytest.param(b'{"resourceType":"Observation","x":NaN}', "no code", id="nan"),
    ],
)  # fmt: skip
def test_bad_rows(line: bytes, reason: str) -> None:
    body = observation("P1", "hr", 72) + b"\n" + line
    with pytest.raises(NdjsonBadRowError, match=f"line 2: .*{reason}"):
        feed_all(NdjsonStatsParser(), [body])
    result = feed_all(NdjsonStatsParser(on_bad_row="skip"), one_byte_at_a_time(body))
    assert (result.rows, result.skipped, result.aggregate.total) == (2, 1, 1)


def test_numbers_keep_their_form_and_exponents_are_exact() -> None:
    body = b"\n".join(
        observation("P1", "hr", 72).replace(b"72", text) for text in (b"72", b"72.0", b"1e2")
    )
    entry = feed_all(NdjsonStatsParser(), [body]).aggregate.entries["P1", "8867-4"]
    assert (entry.count, entry.sum, entry.low, entry.high) == (3, Fraction(244), 72, 100)
    assert isinstance(entry.low, int)


def test_the_synthea_sample_s_quantities() -> None:
    lines = [
        line
        for line in (SAMPLE / "2.Observation.ndjson").read_bytes().splitlines()
        if b'"valueQuantity"' in line and b'"component"' not in line
    ]
    body = (SAMPLE / "2.Observation.ndjson").read_bytes()
    result = feed_all(NdjsonStatsParser(on_bad_row="skip"), [body])
    good = [
        line
        for line in lines
        if isinstance(json.loads(line)["valueQuantity"].get("value"), int | float)
    ]
    assert result.aggregate == naive(good, "code")
    assert result.rows - result.skipped == len(good)


def test_the_aggregator_round_trips() -> None:
    aggregator = StatsAggregator("skip", "text")
    stats = feed_all(
        aggregator.new_parser("ndjson"), [observation("P1", "heart_rate", 200)]
    ).aggregate
    assert aggregator.from_json(json.loads(json.dumps(aggregator.to_json(stats)))) == stats
    assert aggregator.merge([stats, stats]).total == 2
    assert aggregator.report(stats, 1)["totals"]["heart_rate"]["anomalies"] == 1
    assert aggregator.key == "stats/skip/text"
