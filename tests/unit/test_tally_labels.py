"""Tally's additions for NDJSON: labels (merged by the smallest text) and NO_PATIENT counts (in
the totals, under no patient)."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from export_tally.core.counts.tally import NO_PATIENT, Tally, merge_tallies

keys = st.tuples(st.sampled_from(["P1", "P2", NO_PATIENT]), st.sampled_from(["hr", "bp"]))
labelled = st.builds(
    Tally,
    st.dictionaries(keys, st.integers(0, 9), max_size=4),
    st.dictionaries(st.sampled_from(["hr", "bp"]), st.sampled_from(["Heart", "heart", "BP"])),
)


def test_no_patient_counts_are_in_the_totals_only() -> None:
    tally = Tally({("P1", "hr"): 2, (NO_PATIENT, "hr"): 1, (NO_PATIENT, "Condition"): 4})
    assert tally.to_report() == {
        "patients": {"P1": {"hr": 2}},
        "totals": {"hr": 3, "Condition": 4},
    }
    assert tally.without_patient == {"hr": 1, "Condition": 4}
    assert Tally({("P1", "hr"): 2}).without_patient == {}


def test_labels_are_part_of_the_value() -> None:
    tally = Tally({("P1", "8867-4"): 1}, {"8867-4": "Heart rate"})
    assert tally.labels == {"8867-4": "Heart rate"}
    assert tally != Tally({("P1", "8867-4"): 1})
    assert pickle.loads(pickle.dumps(tally)) == tally
    assert "Heart rate" in repr(tally)
    assert Tally({("P1", "hr"): 1}).labels == {}


def test_a_label_must_be_text() -> None:
    with pytest.raises(ValueError, match="must map a str to a str"):
        Tally({}, {"hr": 7})  # type: ignore[dict-item]


def test_merging_keeps_the_smallest_label() -> None:
    a = Tally({("P1", "hr"): 1}, {"hr": "heart"})
    b = Tally({("P2", "hr"): 1}, {"hr": "Heart", "bp": "BP"})
    assert merge_tallies(a, b).labels == {"hr": "Heart", "bp": "BP"}
    assert merge_tallies(b, a) == merge_tallies(a, b)


@settings(max_examples=40, deadline=None)
@given(labelled, labelled, labelled)
def test_merging_labelled_tallies_is_associative_and_commutative(
    a: Tally, b: Tally, c: Tally
) -> None:
    assert merge_tallies(merge_tallies(a, b), c) == merge_tallies(a, merge_tallies(b, c))
    assert merge_tallies(a, b) == merge_tallies(b, a)
    assert merge_tallies(a, Tally()) == a
