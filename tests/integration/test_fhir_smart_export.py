"""A FHIR Bulk Data export behind SMART Backend Services, on the real server over real sockets.

One server for the module, started with `--fhir-clients` (its clients' keys made at test time),
`--fhir-token-seconds 4`, so that a token expires while the tests run, and `--fhir-hold 3
--fhir-rate-limit`, so that a client polls a running job and meets the limit of one job at
once. Tokens come from its token endpoint, for RS384 assertions signed here (`Bearer` asks for a
new one once half of the last one's life is gone). One more server, failing every request faults
reach, shows the 401 comes before an injected fault. The token endpoint's own refusals are in
test_smart_auth.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.fhir import kick_off, observation_counts, wait_for_manifest
from tests.support.servers import Reaper, RunningServer
from tests.support.smart_server import Bearer, SmartServer, running_smart_server

ROOT = Path(__file__).resolve().parents[2]
ASYNC = {"Prefer": "respond-async"}


@pytest.fixture(scope="module")
def smart_server(
    tmp_path_factory: pytest.TempPathFactory, reaper: Reaper, warm_server: RunningServer,
    server_cache_dir: Path,
) -> Iterator[SmartServer]:  # fmt: skip
    """On the session's cache, warm for demo (`warm_server`)."""
    args = ["--fhir-token-seconds", "4", "--fhir-hold", "3", "--fhir-rate-limit", "--workers", "1"]
    directory = tmp_path_factory.mktemp("smart-fhir")
    with running_smart_server(directory, reaper, args, cache_dir=server_cache_dir) as server:
        yield server


def assert_refused(response: httpx.Response, diagnostics: str) -> None:
    """A 401 with RFC 6750's challenge and an OperationOutcome saying `diagnostics`."""
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith('Bearer realm="fhir"')
    assert response.headers["content-type"] == "application/fhir+json"
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "login"
    assert diagnostics in outcome["issue"][0]["diagnostics"]


@pytest.mark.slow
def test_an_export_with_a_token_from_the_token_endpoint(smart_server: SmartServer) -> None:
    kickoff = f"{smart_server.fhir}/Group/demo/$export"
    bearer = Bearer(smart_server)
    with httpx.Client(timeout=60) as client:
        assert_refused(client.get(kickoff, headers=ASYNC), "no access token")
        status_url = kick_off(client, kickoff, bearer.headers())
        assert_refused(client.get(status_url), "no access token")
        done, waiting = wait_for_manifest(client, status_url, bearer.headers())
        assert waiting and all(poll.headers["retry-after"] == "1" for poll in waiting)
        manifest = done.json()
        assert manifest["requiresAccessToken"] is True
        assert [entry["type"] for entry in manifest["output"]] == ["Patient", *["Observation"] * 2]
        observations: list[bytes] = []
        for entry in manifest["output"]:
            response = client.get(entry["url"], headers=bearer.headers())
            assert response.status_code == 200
            lines = response.content.splitlines()
            assert len(lines) == entry["count"]
            if entry["type"] == "Observation":
                observations += lines
            assert_refused(client.get(entry["url"]), "no access token")
            wrong = {"Authorization": "Bearer not-a-token-it-gave"}
            assert_refused(client.get(entry["url"], headers=wrong), "not valid")
        expected = json.loads((ROOT / "demo.json").read_text())["patients"]
        assert observation_counts(observations) == expected
        assert_refused(client.delete(status_url), "no access token")
        assert client.delete(status_url, headers=bearer.headers()).status_code == 202
        assert client.get(status_url, headers=bearer.headers()).status_code == 404


@pytest.mark.slow
def test_an_expired_token_is_refused(smart_server: SmartServer) -> None:
    token, lifetime = smart_server.token()
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(timeout=60) as client:
        status_url = kick_off(client, f"{smart_server.fhir}/Group/demo/$export", headers,
                              _type="Patient")  # fmt: skip
        done, _ = wait_for_manifest(client, status_url, Bearer(smart_server).headers())
        file_url = done.json()["output"][0]["url"]
        # The token is used until the server refuses it: the refusal is what is waited for.
        deadline = time.monotonic() + lifetime + 60
        while (response := client.get(file_url, headers=headers)).status_code == 200:
            assert time.monotonic() < deadline, "the token never expired"
            time.sleep(0.2)
    assert_refused(response, "the access token has expired")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_metadata_and_discovery_stay_open(smart_server: SmartServer) -> None:
    """The CapabilityStatement is public, as on FHIR servers: it says how to authorize."""
    statement = httpx.get(f"{smart_server.fhir}/metadata")
    assert statement.status_code == 200
    security = statement.json()["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    discovery = httpx.get(f"{smart_server.fhir}/.well-known/smart-configuration")
    assert discovery.json()["token_endpoint"] == smart_server.token_url


def test_the_rate_limit_counts_each_clients_running_jobs_apart(smart_server: SmartServer) -> None:
    kickoff = f"{smart_server.fhir}/Group/demo/$export"
    rsa, ec = Bearer(smart_server).headers(), Bearer(smart_server, smart_server.ec).headers()
    with httpx.Client(timeout=60) as client:
        first = kick_off(client, kickoff, rsa, _type="Patient")  # held 3 s: running
        again = client.get(kickoff, params={"_type": "Patient"}, headers={**ASYNC, **rsa})
        assert again.status_code == 429, again.text
        assert again.headers["retry-after"] == "1"
        assert again.json()["issue"][0]["code"] == "throttled"
        other = kick_off(client, kickoff, ec, _type="Patient")  # another client: its own limit
        for status_url, headers in ((first, rsa), (other, ec)):
            assert client.delete(status_url, headers=headers).status_code == 202


def test_a_request_without_a_token_meets_its_401_before_any_injected_fault(
    tmp_path: Path, reaper: Reaper, server_cache_dir: Path
) -> None:
    """With every faulted request failed (`--fail-rate 1`): kick-offs are never faulted, a
    status poll without a token is refused, one with a token fails as an injected fault."""
    args = ["--fail-rate", "1", "--retry-after", "0", "--workers", "1"]
    with (
        running_smart_server(tmp_path, reaper, args, cache_dir=server_cache_dir) as faulty,
        httpx.Client(timeout=60) as client,
    ):
        headers = Bearer(faulty).headers()
        status_url = kick_off(client, f"{faulty.fhir}/Group/demo/$export", headers)
        assert_refused(client.get(status_url), "no access token")
        failed = client.get(status_url, headers=headers)
        assert failed.status_code == 500
        assert failed.headers["retry-after"] == "0"
        assert failed.json()["issue"][0]["code"] == "transient"
