"""Fault decisions: reproducible from the seed, roughly at the asked rates."""

from __future__ import annotations

from export_server.faults import FAIL_STATUSES, FaultConfig, FaultInjector


def decisions(config: FaultConfig, n: int = 2000) -> list[tuple[int | None, float | None]]:
    injector = FaultInjector(config)
    return [
        (fault.status, fault.drop_fraction)
        for i in range(n)
        for fault in [injector.decide("GET", f"/api/export/demo/{i % 7}/data", None, body=True)]
    ]


def test_no_faults_by_default() -> None:
    assert set(decisions(FaultConfig())) == {(None, None)}


def test_seeded_runs_are_reproducible() -> None:
    config = FaultConfig(fail_rate=0.3, drop_rate=0.3, seed=42)
    assert decisions(config) == decisions(config)
    assert decisions(config) != decisions(FaultConfig(fail_rate=0.3, drop_rate=0.3, seed=43))


def test_rates_are_roughly_honoured() -> None:
    results = decisions(FaultConfig(fail_rate=0.2, drop_rate=0.5, seed=1), n=5000)
    failed = sum(status is not None for status, _ in results)
    dropped = sum(fraction is not None for _, fraction in results)
    assert 0.17 < failed / 5000 < 0.23
    # Drops are decided among the requests that did not fail.
    assert 0.45 < dropped / (5000 - failed) < 0.55
    assert {status for status, _ in results} - {None} == set(FAIL_STATUSES)


def test_a_repeated_request_gets_a_fresh_decision() -> None:
    injector = FaultInjector(FaultConfig(fail_rate=0.5, seed=7))
    fates = {injector.decide("GET", "/same", None, body=False).status for _ in range(50)}
    assert None in fates and len(fates) > 1


def test_metadata_requests_are_never_dropped() -> None:
    injector = FaultInjector(FaultConfig(drop_rate=1.0, seed=3))
    assert injector.decide("GET", "/api/export", None, body=False).drop_fraction is None
