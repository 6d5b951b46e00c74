"""Fault decisions: reproducible from the seed, roughly at the asked rates, and which FHIR
requests they reach."""

from __future__ import annotations

import pytest

from export_server.faults import FAIL_STATUSES, FaultConfig, FaultInjector, Reach
from export_server.fhir_routes import fault_reach


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


@pytest.mark.parametrize(
    ("method", "path", "reach"),
    [
        ("GET", "/fhir/jobs/abc", Reach.FAIL),  # a status poll
        ("GET", "/fhir/jobs/abc/Observation-0.ndjson", Reach.CUT),  # a file
        ("DELETE", "/fhir/jobs/abc", Reach.NONE),
        ("GET", "/fhir/Group/demo/$export", Reach.NONE),  # kick-offs are never failed
        ("POST", "/fhir/$export", Reach.NONE),
        ("GET", "/fhir/metadata", Reach.NONE),
        ("POST", "/fhir/auth/token", Reach.NONE),
        ("GET", "/fhir/jobs/", Reach.NONE),
        ("GET", "/fhir/jobs/abc/x/y", Reach.NONE),
    ],
)
def test_faults_reach_fhir_status_polls_and_files_only(
    method: str, path: str, reach: Reach
) -> None:
    assert fault_reach(method, path) is reach
