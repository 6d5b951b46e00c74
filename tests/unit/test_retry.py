"""The retry policy and budget: backoff bounds, progress, the overall cap, outages by the clock."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from export_tally.transport.retry import MAX_RETRY_AFTER, RetryBudget, RetryPolicy


@given(st.integers(1, 10**6), st.none() | st.floats(0, 10**9))
def test_a_delay_stays_within_its_cap_however_many_failures(
    failures: int, retry_after: float | None
) -> None:
    policy = RetryPolicy()
    assert 0 <= policy.delay(failures) <= policy.max_delay
    assert 0 <= policy.delay(failures, cap=policy.outage_max_delay) <= policy.outage_max_delay
    ceiling = max(policy.max_delay, min(retry_after or 0, MAX_RETRY_AFTER))
    assert policy.delay(failures, retry_after) <= ceiling


def test_progress_does_not_use_up_a_retry_but_the_cap_ends_any_loop() -> None:
    budget = RetryBudget(RetryPolicy(retries=2, cap_factor=3))
    assert budget.record_failure(0) and budget.record_failure(0)
    assert not budget.record_failure(0)  # a third failure in a row without progress

    budget = RetryBudget(RetryPolicy(retries=2, cap_factor=3))
    allowed = [budget.record_failure(progress) for progress in range(1, 8)]
    assert allowed == [True] * 5 + [False] * 2  # always progress, yet 2 x 3 attempts in all


def test_outage_attempts_are_bounded_by_the_clock_not_the_retries() -> None:
    budget = RetryBudget(RetryPolicy(retries=0, max_outage=3600))
    assert all(budget.record_outage() for _ in range(100))
    assert budget.attempts == 100 and budget.failures == 0
    assert budget.down_since is not None
    event = budget.reached()
    assert event is not None and event.back is not None and event.since <= event.back
    assert budget.reached() is None  # the outage is over: nothing more to report


def test_an_outage_past_max_outage_ends() -> None:
    budget = RetryBudget(RetryPolicy(max_outage=0.0))
    assert not budget.record_outage()


def test_the_flag_default_is_the_policy_default() -> None:
    # arguments.py repeats the number so that parsing flags never imports httpx.
    from export_tally.cli.arguments import DEFAULT_MAX_OUTAGE

    assert RetryPolicy().max_outage == DEFAULT_MAX_OUTAGE
