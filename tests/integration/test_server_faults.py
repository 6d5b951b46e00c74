"""Fault injection as a client meets it on the wire."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.support.servers import RunningServer

DEMO_FIRST = "f725622a-22ea-4acc-aab8-810ec8b5e2c6"
DEMO_FIRST_SIZE = 391_899


def statuses(url: str, n: int) -> list[int]:
    with httpx.Client(timeout=30) as client:
        return [client.get(f"{url}/api/export/demo?i={i}").status_code for i in range(n)]


def test_fail_rate_answers_errors_with_retry_after(
    start_server: Callable[..., RunningServer],
) -> None:
    running = start_server("--fail-rate", "0.5", "--fault-seed", "1")
    with httpx.Client(timeout=30) as client:
        responses = [client.get(f"{running.url}/api/export") for _ in range(200)]
    failed = [r for r in responses if r.status_code != 200]
    assert 60 < len(failed) < 140
    assert {r.status_code for r in failed} <= {429, 500, 503}
    for r in failed:
        if r.status_code in (429, 503):
            assert r.headers["retry-after"] == "1"


def test_seeded_faults_are_reproducible(start_server: Callable[..., RunningServer]) -> None:
    first = start_server("--fail-rate", "0.3", "--fault-seed", "9")
    second = start_server("--fail-rate", "0.3", "--fault-seed", "9")
    assert statuses(first.url, 40) == statuses(second.url, 40)


def read_body(url: str, headers: dict[str, str] | None = None) -> tuple[bytes, bool]:
    """The bytes received, and whether the body ended cleanly."""
    received = bytearray()
    try:
        with httpx.stream("GET", url, headers=headers, timeout=30) as response:
            for chunk in response.iter_raw():
                received += chunk
    except httpx.RemoteProtocolError:
        return bytes(received), False
    return bytes(received), True


def test_dropped_body_is_incomplete_on_the_wire(start_server: Callable[..., RunningServer]) -> None:
    for args in ((), ("--no-range",)):
        running = start_server("--drop-rate", "1", "--fault-seed", "5", *args)
        body, clean = read_body(f"{running.url}/api/export/demo/{DEMO_FIRST}/data")
        assert not clean
        assert 0 < len(body) < DEMO_FIRST_SIZE


def test_drops_happen_at_different_points(start_server: Callable[..., RunningServer]) -> None:
    running = start_server("--drop-rate", "1", "--fault-seed", "5")
    lengths = {
        len(read_body(f"{running.url}/api/export/demo/{DEMO_FIRST}/data")[0]) for _ in range(5)
    }
    assert len(lengths) > 1
