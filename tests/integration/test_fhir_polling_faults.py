"""A client's polling against a held job, the 429s of --fhir-rate-limit, and injected faults."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
import pytest

from tests.support.fhir import kick_off, wait_for_manifest
from tests.support.servers import StartServer


@pytest.mark.slow
def test_a_held_job_answers_202_with_retry_after_then_the_manifest(
    start_server: StartServer,
) -> None:
    running = start_server("--fhir-hold", "2")
    with httpx.Client(timeout=30) as client:
        status_url = kick_off(client, f"{running.url}/fhir/Group/demo/$export")
        assert status_url.startswith(f"{running.url}/fhir/")
        done, waiting = wait_for_manifest(client, status_url)
    assert waiting, "the job was held: at least one poll must have found it running"
    for response in waiting:
        assert response.headers["retry-after"] == "1"
        assert response.headers["x-progress"].endswith(("complete", "--fhir-hold"))
    assert done.headers["content-type"] == "application/json"
    assert parsedate_to_datetime(done.headers["expires"]) > datetime.now(UTC)
    assert len(done.json()["output"]) == 3


def test_rate_limit_answers_too_soon_and_a_second_kickoff_with_429(
    start_server: StartServer,
) -> None:
    running = start_server("--fhir-hold", "600", "--fhir-rate-limit", "--fhir-poll-after", "300")
    kickoff = f"{running.url}/fhir/Group/demo/$export"
    with httpx.Client(timeout=30) as client:
        status_url = kick_off(client, kickoff, _type="Patient")
        first = client.get(status_url)
        assert first.status_code == 202
        assert first.headers["retry-after"] == "300"
        too_soon = client.get(status_url)
        second = client.get(kickoff, headers={"Prefer": "respond-async"})
        for refused in (too_soon, second):
            assert refused.status_code == 429
            assert refused.headers["retry-after"] == "300"
            assert refused.json()["issue"][0]["code"] == "throttled"
        # A running job can be cancelled; then a new one may start.
        assert client.delete(status_url).status_code == 202
        assert client.get(status_url).status_code == 404
        kick_off(client, kickoff, _type="Patient")


def test_faults_reach_status_polls_and_files(start_server: StartServer) -> None:
    running = start_server(
        "--fail-rate", "0.4", "--drop-rate", "1", "--fault-seed", "3", "--retry-after", "0",
        "--fhir-poll-after", "0",
    )  # fmt: skip
    with httpx.Client(timeout=30) as client:
        status_url = kick_off(client, f"{running.url}/fhir/Group/demo/$export")
        wait_for_manifest(client, status_url)
        polls = [client.get(status_url) for _ in range(30)]
        failed = [poll for poll in polls if poll.status_code != 200]
        assert 0 < len(failed) < len(polls)
        for poll in failed:
            assert poll.status_code == 500
            assert poll.headers["retry-after"] == "0"  # --retry-after's
            assert poll.headers["content-type"] == "application/fhir+json"
            assert poll.json()["issue"][0]["code"] == "transient"
        manifest = next(poll for poll in polls if poll.status_code == 200).json()
        entry = manifest["output"][1]
        cut = refused = 0
        for _ in range(12):
            received = 0
            try:
                headers = {"Accept-Encoding": "identity"}
                with client.stream("GET", entry["url"], headers=headers) as response:
                    if response.status_code != 200:
                        assert response.status_code in (429, 500, 503)
                        response.read()
                        assert response.json()["issue"][0]["code"] == "transient"
                        refused += 1
                        continue
                    size = int(response.headers["content-length"])
                    for chunk in response.iter_raw():
                        received += len(chunk)
            except httpx.RemoteProtocolError:
                assert 0 < received < size
                cut += 1
                continue
            raise AssertionError("a file came whole with --drop-rate 1")
        assert cut and refused
