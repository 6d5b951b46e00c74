"""Under injected faults the answer is exactly the fault-free answer: no row lost or counted twice."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from export_tally.cli.exitcodes import ExitCode
from tests.support.cli_run import run_cli
from tests.support.servers import RunningServer

ROOT = Path(__file__).resolve().parents[2]
# Retry-After 0: the tool still backs off (exponential, with jitter), but never waits a second.
FAULTS = ("--fail-rate", "0.2", "--drop-rate", "0.3", "--retry-after", "0")


def recoveries(stderr: str) -> tuple[int, int, int]:
    """(failed attempts, resumes, restarts) from the tool's summary line (zeros when absent)."""
    match = re.search(
        r"recovered from (\d+) failed attempt\(s\): (\d+) resumed .*?, (\d+) restarted", stderr
    )
    return (int(match[1]), int(match[2]), int(match[3])) if match else (0, 0, 0)


@pytest.mark.parametrize("mode", [(), ("--no-range",)], ids=["ranges", "no-range"])
def test_demo_is_exact_under_faults_run_after_run(
    start_server: Callable[..., RunningServer], mode: tuple[str, ...]
) -> None:
    # A request's fate depends on the seed and on how often the server has seen that request, so
    # each run meets other faults (reproducibly), without a server started per fault pattern.
    running = start_server(*FAULTS, "--fault-seed", "1", *mode)
    expected = (ROOT / "demo.json").read_text()
    failed = 0
    for run in range(1, 5):
        outcome = run_cli("demo", "--server", running.url, "--no-progress")
        assert outcome.status == ExitCode.OK, f"run {run}: {outcome.stderr}"
        assert outcome.stdout == expected, f"run {run}"
        failed += recoveries(outcome.stderr)[0]
    assert failed > 0, "no run met a fault"


@pytest.mark.slow
@pytest.mark.parametrize(
    "seed, mode", [("11", ()), ("12", ("--no-range",))], ids=["ranges", "no-range"]
)
def test_small_is_exact_under_faults(
    warm_small_server: RunningServer,
    start_server: Callable[..., RunningServer],
    seed: str,
    mode: tuple[str, ...],
) -> None:
    running = start_server(*FAULTS, "--fault-seed", seed, *mode)
    outcome = run_cli("small", "--server", running.url, "--no-progress")
    assert outcome.status == ExitCode.OK, outcome.stderr
    assert outcome.stdout == (ROOT / "small.json").read_text()
    failed, resumes, restarts = recoveries(outcome.stderr)
    assert failed > 0
    if mode:
        assert resumes == 0 and restarts > 0
    else:
        assert resumes > 0


def test_every_body_cut_is_resumed_with_range(start_server: Callable[..., RunningServer]) -> None:
    running = start_server("--drop-rate", "0.8", "--fault-seed", "21")
    outcome = run_cli("demo", "--server", running.url, "--retries", "10")
    assert outcome.status == ExitCode.OK, outcome.stderr
    assert outcome.stdout == (ROOT / "demo.json").read_text()
    failed, resumes, restarts = recoveries(outcome.stderr)
    assert failed >= resumes > 0
    assert restarts == 0


def test_failures_beyond_the_retries_end_with_exit_3(
    start_server: Callable[..., RunningServer],
) -> None:
    running = start_server("--fail-rate", "1", "--fault-seed", "5", "--retry-after", "0")
    outcome = run_cli("demo", "--server", running.url, "--retries", "1")
    assert outcome.status == ExitCode.UNREACHABLE
    message = outcome.stderr.strip().splitlines()[-1]
    assert running.url in message and "HTTP" in message
