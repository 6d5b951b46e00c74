"""--retry-after: the wait injected 503 and 429 answers ask for (the tests ask for none)."""

from __future__ import annotations

import httpx
import pytest

from export_server.options import parse_args
from tests.servers import StartServer


def test_injected_faults_carry_the_retry_after_asked_for(start_server: StartServer) -> None:
    running = start_server("--fail-rate", "1", "--fault-seed", "4", "--retry-after", "0")
    with httpx.Client(timeout=30) as client:
        responses = [client.get(f"{running.url}/api/export") for _ in range(30)]
    asking = [r for r in responses if r.status_code in (429, 503)]
    assert asking and all(r.headers["retry-after"] == "0" for r in asking)
    assert all("retry-after" not in r.headers for r in responses if r.status_code == 500)


def test_retry_after_defaults_to_one_second() -> None:
    assert parse_args([]).retry_after == 1
    assert parse_args(["--retry-after", "7"]).retry_after == 7


@pytest.mark.parametrize(
    "value, message", [("-1", "is less than 0"), ("0.5", "not a whole number of seconds")]
)
def test_bad_retry_after_exits_2_with_one_line(
    value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(["--retry-after", value])
    assert exited.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0]
