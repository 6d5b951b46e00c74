"""Tally: exact counts, the report shape, and the merge laws (Hypothesis)."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from export_tally.core.counts.tally import Tally, merge_tallies

keys = st.tuples(st.sampled_from(["P1", "P2", "Pé", "P,4"]), st.sampled_from(["hr", "bp", "x"]))
tallies = st.dictionaries(keys, st.integers(min_value=0, max_value=10**12), max_size=8).map(Tally)


def test_report_shape() -> None:
    tally = Tally({("P1", "hr"): 2, ("P1", "bp"): 1, ("P2", "hr"): 3})
    assert tally.to_report() == {
        "patients": {"P1": {"hr": 2, "bp": 1}, "P2": {"hr": 3}},
        "totals": {"hr": 5, "bp": 1},
    }


def test_empty_report_lists_nothing() -> None:
    assert Tally().to_report() == {"patients": {}, "totals": {}}


def test_zero_counts_are_dropped() -> None:
    tally = Tally({("P1", "hr"): 0, ("P2", "bp"): 1})
    assert tally == Tally({("P2", "bp"): 1})
    assert tally.to_report() == {"patients": {"P2": {"bp": 1}}, "totals": {"bp": 1}}
    assert len(tally) == 1


@pytest.mark.parametrize(
    "count",
    [pytest.param(-1, id="negative"), pytest.param(1.0, id="float"), pytest.param(True, id="bool")],
)
def test_bad_counts_are_refused(count: object) -> None:
    with pytest.raises(ValueError, match="non-negative int"):
        Tally({("P1", "hr"): count})  # type: ignore[dict-item]


def test_accessors() -> None:
    tally = Tally({("P1", "hr"): 2, ("P2", "hr"): 3})
    assert tally.count("P1", "hr") == 2
    assert tally.count("P1", "bp") == 0
    assert tally.total == 5
    assert dict(tally.counts) == {("P1", "hr"): 2, ("P2", "hr"): 3}


def test_counts_view_is_read_only() -> None:
    tally = Tally({("P1", "hr"): 2})
    with pytest.raises(TypeError):
        tally.counts[("P1", "hr")] = 5  # type: ignore[index]


def test_merge_adds_and_leaves_inputs_alone() -> None:
    a = Tally({("P1", "hr"): 2})
    b = Tally({("P1", "hr"): 3, ("P2", "bp"): 1})
    assert a.merge(b) == Tally({("P1", "hr"): 5, ("P2", "bp"): 1})
    assert a == Tally({("P1", "hr"): 2})
    assert merge_tallies() == Tally()
    assert merge_tallies(a) == a


def test_pickle_round_trip_is_small() -> None:
    tally = Tally({("P1", "hr"): 2, ("P2", "bp"): 10**15})
    data = pickle.dumps(tally)
    assert pickle.loads(data) == tally
    assert len(data) < 200


def test_not_equal_to_other_types() -> None:
    assert Tally() != {}


@pytest.mark.slow  # Hypothesis at its full example count
@settings(max_examples=60, deadline=None)
@given(tallies, tallies, tallies)
def test_merge_is_associative(a: Tally, b: Tally, c: Tally) -> None:
    assert merge_tallies(merge_tallies(a, b), c) == merge_tallies(a, merge_tallies(b, c))
    assert merge_tallies(a, b, c) == a.merge(b).merge(c)


@pytest.mark.slow  # Hypothesis at its full example count
@settings(max_examples=60, deadline=None)
@given(tallies, tallies)
def test_merge_is_commutative(a: Tally, b: Tally) -> None:
    assert merge_tallies(a, b) == merge_tallies(b, a)


@pytest.mark.slow  # Hypothesis at its full example count
@settings(max_examples=60, deadline=None)
@given(tallies)
def test_empty_tally_is_the_identity(a: Tally) -> None:
    assert merge_tallies(a, Tally()) == a == merge_tallies(Tally(), a)


@pytest.mark.slow  # Hypothesis at its full example count
@settings(max_examples=60, deadline=None)
@given(tallies, tallies)
def test_report_totals_add_up(a: Tally, b: Tally) -> None:
    report = merge_tallies(a, b).to_report()
    assert sum(report["totals"].values()) == a.total + b.total
    for counts in report["patients"].values():
        assert all(n > 0 for n in counts.values())
