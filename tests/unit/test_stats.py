"""Stats: the report (exact rounding, latency, min/max as written), merge laws, JSON and pickle."""

from __future__ import annotations

import json
import pickle
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from export_tally.core.stats.aggregate import (
    NORMAL_RANGES,
    KeyStats,
    Number,
    Stats,
    is_anomaly,
    merge_stats,
)

SECOND = 1_000_000
T0 = 1_756_166_400 * SECOND  # 2025-08-26T00:00:00Z


def one(value: Number, micros: int = T0, event_type: str = "x") -> KeyStats:
    anomalies = int(is_anomaly(event_type, value))
    return KeyStats(1, value, value, value, anomalies, micros, micros)


def test_report_shape() -> None:
    stats = Stats(
        {
            ("P001", "heart_rate"): KeyStats(3, 223, 55, 120, 0, T0, T0 + 20 * SECOND),
            ("P002", "heart_rate"): KeyStats(1, 190, 190, 190, 1, T0 + 5 * SECOND, T0 + 5 * SECOND),
            ("P002", "spo2"): KeyStats(2, 195, 97, 98, 0, T0, T0 + 3 * SECOND),
        }
    )
    assert stats.to_report() == {
        "patients": {
            "P001": {
                "heart_rate": {"count": 3, "mean": 74.3, "min": 55, "max": 120, "anomalies": 0, "latency": 10.0}
            },
            "P002": {
                "heart_rate": {"count": 1, "mean": 190.0, "min": 190, "max": 190, "anomalies": 1, "latency": None},
                "spo2": {"count": 2, "mean": 97.5, "min": 97, "max": 98, "anomalies": 0, "latency": 3.0},
            },
        },
        "totals": {
            # 413 / 4 = 103.25, to even: 103.2; 20 s over 3 gaps: 6.7
            "heart_rate": {"count": 4, "mean": 103.2, "min": 55, "max": 190, "anomalies": 1, "latency": 6.7},
            "spo2": {"count": 2, "mean": 97.5, "min": 97, "max": 98, "anomalies": 0, "latency": 3.0},
        },
    }  # fmt: skip
    assert Stats().to_report() == {"patients": {}, "totals": {}}


@pytest.mark.parametrize(
    ("total", "count", "precision", "mean"),
    [
        pytest.param(7425, 100, 1, 74.2, id="half-to-even-down"),
        pytest.param(7435, 100, 1, 74.4, id="half-to-even-up"),
        pytest.param(Fraction(2, 10), 2, 1, 0.1, id="decimal-exact"),
        pytest.param(Fraction(-3, 20), 1, 1, -0.2, id="negative-half-to-even"),
        pytest.param(Fraction(-1, 100), 1, 1, 0.0, id="tiny-negative-is-zero"),
        pytest.param(7425, 100, 2, 74.25, id="two-places"),
        pytest.param(745, 10, 0, 74, id="precision-0-gives-int-even"),
        pytest.param(755, 10, 0, 76, id="precision-0-gives-int-up"),
        # 0.15 is 0.1499999... as a float: a float sum would round it down.
        pytest.param(Fraction(15, 100), 1, 1, 0.2, id="exact-not-float"),
    ],
)
def test_mean_is_rounded_half_to_even_from_the_exact_value(
    total: Number, count: int, precision: int, mean: float | int
) -> None:
    entry = KeyStats(count, total, min(total, 0), max(total, 0), 0, T0, T0)
    reported = Stats({("P1", "x"): entry}).to_report(precision)["totals"]["x"]["mean"]
    assert reported == mean
    assert type(reported) is type(mean)


def test_latency_is_the_average_gap_in_seconds() -> None:
    entry = KeyStats(4, 0, 0, 0, 0, T0, T0 + 10 * SECOND + 1)  # 3 gaps
    report = entry.to_report()
    assert report["latency"] == 3.3
    assert entry.to_report(6)["latency"] == 3.333334  # 3.33333366..., rounded
    assert entry.to_report(0)["latency"] == 3
    assert KeyStats(2, 0, 0, 0, 0, T0, T0).to_report()["latency"] == 0.0  # a tie


def test_totals_latency_runs_across_patients() -> None:
    a = KeyStats(2, 2, 1, 1, 0, T0, T0 + 10 * SECOND)
    b = KeyStats(2, 2, 1, 1, 0, T0 + 4 * SECOND, T0 + 6 * SECOND)
    totals = Stats({("P1", "x"): a, ("P2", "x"): b}).to_report()["totals"]["x"]
    assert totals["latency"] == 3.3  # 4 events from T0 to T0+10s: 10/3


def test_min_and_max_keep_how_values_were_written() -> None:
    decimal = Stats({("P1", "spo2"): one(Fraction(725, 10), event_type="spo2")})
    assert decimal.to_report()["totals"]["spo2"] | {"latency": 0} == {
        "count": 1, "mean": 72.5, "min": 72.5, "max": 72.5, "anomalies": 1, "latency": 0,
    }  # fmt: skip
    whole_decimal = one(Fraction(72))
    assert whole_decimal.to_report()["min"] == 72.0
    assert type(whole_decimal.to_report()["min"]) is float
    assert type(one(72).to_report()["min"]) is int


@pytest.mark.parametrize("order", ["int-first", "fraction-first"])
def test_equal_values_prefer_the_int_whatever_the_order(order: str) -> None:
    entries = [one(72), one(Fraction(72))]
    if order == "fraction-first":
        entries.reverse()
    merged = entries[0].merge(entries[1])
    assert type(merged.low) is int
    assert type(merged.high) is int


@pytest.mark.parametrize(
    ("event_type", "value", "anomaly"),
    [
        ("heart_rate", 40, False), ("heart_rate", 39, True), ("heart_rate", Fraction(399, 10), True),
        ("heart_rate", 180, False), ("heart_rate", 181, True), ("spo2", 85, False),
        ("spo2", 84, True), ("spo2", 100, False), ("spo2", Fraction(1001, 10), True),
        ("bp_sys", 89, True), ("bp_sys", 201, True), ("bp_sys", 200, False),
        ("bp_dia", 59, True), ("bp_dia", 121, True), ("bp_dia", 60, False),
        ("temp", -1000, False), ("HEART_RATE", 1000, False),
    ],
)  # fmt: skip
def test_anomalies(event_type: str, value: Number, anomaly: bool) -> None:
    assert is_anomaly(event_type, value) is anomaly
    assert set(NORMAL_RANGES) == {"heart_rate", "spo2", "bp_sys", "bp_dia"}


def test_anomalies_of_a_type_without_a_range_are_unknown_not_zero() -> None:
    entry = KeyStats(2, 500, 0, 500, 0, T0, T0 + SECOND)
    report = Stats({("P1", "temp"): entry, ("P1", "spo2"): entry}).to_report()
    assert report["patients"]["P1"]["temp"]["anomalies"] is None
    assert report["totals"]["temp"]["anomalies"] is None
    assert report["patients"]["P1"]["spo2"]["anomalies"] == 0  # measured: none
    assert report["totals"]["spo2"]["anomalies"] == 0


def test_merge_adds_and_leaves_inputs_alone() -> None:
    a = Stats({("P1", "x"): one(3)})
    b = Stats({("P1", "x"): one(5, T0 + SECOND), ("P2", "x"): one(1)})
    merged = a.merge(b)
    assert merged.entries[("P1", "x")] == KeyStats(2, 8, 3, 5, 0, T0, T0 + SECOND)
    assert len(merged) == 2
    assert merged.total == 3
    assert a == Stats({("P1", "x"): one(3)})
    assert merge_stats() == Stats()
    assert merge_stats(a) == a


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param(KeyStats(0, 0, 0, 0, 0, T0, T0), id="no-events"),
        pytest.param(KeyStats(1, 1, 2, 1, 0, T0, T0), id="min-above-max"),
        pytest.param(KeyStats(1, 1, 1, 1, 2, T0, T0), id="more-anomalies-than-events"),
        pytest.param(KeyStats(2, 1, 1, 1, 0, T0, T0 - 1), id="first-after-last"),
        pytest.param(KeyStats(1, 1.0, 1, 1, 0, T0, T0), id="float-sum"),  # type: ignore[arg-type]
        pytest.param(KeyStats(True, 1, 1, 1, 0, T0, T0), id="bool-count"),
    ],
)
def test_bad_entries_are_refused(entry: KeyStats) -> None:
    with pytest.raises(ValueError, match="stats entry"):
        Stats({("P1", "x"): entry})


@pytest.mark.parametrize("key", [("P1",), ("P1", ""), ("P1", 2), "P1x"])
def test_bad_keys_are_refused(key: Any) -> None:
    with pytest.raises(ValueError, match="stats key"):
        Stats({key: one(1)})


def test_equality_sees_how_values_were_written() -> None:
    assert Stats({("P1", "x"): one(72)}) != Stats({("P1", "x"): one(Fraction(72))})
    assert Stats() != {}


def test_sum_is_kept_as_an_int_when_whole() -> None:
    half = one(Fraction(1, 2))
    assert type(half.merge(half).sum) is int
    assert (
        Stats({("P1", "x"): KeyStats(1, Fraction(4, 2), 2, 2, 0, T0, T0)}).to_json()["entries"][0][
            3
        ]
        == 2
    )


def test_pickle_round_trip_is_small() -> None:
    stats = Stats(
        {
            (f"P{i:03d}", event_type): KeyStats(10**6, 75 * 10**6, 30, 200, 1000, T0, T0 + 10**12)
            for i in range(6)
            for event_type in ("heart_rate", "spo2")
        }
    )
    data = pickle.dumps(stats)
    assert pickle.loads(data) == stats
    assert len(data) < 1200  # about 80 bytes a key


@pytest.mark.parametrize(
    "data",
    [
        pytest.param([], id="not-a-dict"),
        pytest.param({"entries": []}, id="no-format"),
        pytest.param({"format": "export-tally/stats/0", "entries": []}, id="other-format"),
        pytest.param({"format": "export-tally/stats/1"}, id="no-entries"),
        pytest.param({"format": "export-tally/stats/1", "entries": [["P1", "x", 1]]}, id="short"),
        pytest.param({"format": "export-tally/stats/1", "entries": [["P1", "x", 1, 1.5, 1, 2, 0, 0, 0]]}, id="float"),
        pytest.param({"format": "export-tally/stats/1", "entries": [["P1", "x", 1, "1/0", 1, 2, 0, 0, 0]]}, id="zero-denominator"),
        pytest.param({"format": "export-tally/stats/1", "entries": [["P1", "x", 1, "x", 1, 2, 0, 0, 0]]}, id="not-a-number"),
        pytest.param({"format": "export-tally/stats/1", "entries": [["P1", "x", 1, 1, 1, 1, 0, 0, 0]] * 2}, id="repeated-key"),
        pytest.param({"format": "export-tally/stats/1", "entries": [["P1", "x", 1, 1, 2, 1, 0, 0, 0]]}, id="inconsistent"),
    ],
)  # fmt: skip
def test_from_json_refuses_what_to_json_never_wrote(data: Any) -> None:
    with pytest.raises(ValueError):
        Stats.from_json(data)


# Exact values as the parser makes them: ints, and Fractions from decimal text.
values = st.one_of(
    st.integers(-(10**6), 10**6),
    st.builds(Fraction, st.integers(-(10**8), 10**8), st.sampled_from([10, 100, 10**6])),
)
times = st.integers(T0 - 10**12, T0 + 10**12)


@st.composite
def key_stats(draw: st.DrawFn) -> KeyStats:
    low, high = sorted((draw(values), draw(values)))
    count = draw(st.integers(1, 10**9))
    first, last = sorted((draw(times), draw(times)))
    return KeyStats(count, draw(values), low, high, draw(st.integers(0, count)), first, last)


keys = st.tuples(st.sampled_from(["P1", "P2", "Pé", "P,4"]), st.sampled_from(["heart_rate", "x"]))
all_stats = st.dictionaries(keys, key_stats(), max_size=6).map(Stats)


@pytest.mark.slow  # Hypothesis at its full example count
@settings(max_examples=60, deadline=None)
@given(all_stats, all_stats, all_stats)
def test_merge_is_associative(a: Stats, b: Stats, c: Stats) -> None:
    assert merge_stats(merge_stats(a, b), c) == merge_stats(a, merge_stats(b, c))
    assert merge_stats(a, b, c) == a.merge(b).merge(c)


@pytest.mark.slow  # Hypothesis at its full example count
@settings(max_examples=60, deadline=None)
@given(all_stats, all_stats)
def test_merge_is_commutative(a: Stats, b: Stats) -> None:
    assert merge_stats(a, b) == merge_stats(b, a)


@pytest.mark.slow  # Hypothesis at its full example count
@settings(max_examples=60, deadline=None)
@given(all_stats)
def test_empty_stats_is_the_identity(a: Stats) -> None:
    assert merge_stats(a, Stats()) == a == merge_stats(Stats(), a)


@pytest.mark.slow  # Hypothesis at its full example count
@settings(max_examples=60, deadline=None)
@given(all_stats)
def test_json_round_trip_is_exact(a: Stats) -> None:
    text = json.dumps(a.to_json())
    back = Stats.from_json(json.loads(text))
    assert back == a
    assert back.entries == a.entries
    assert json.dumps(back.to_json()) == text
    assert pickle.loads(pickle.dumps(a)) == a
