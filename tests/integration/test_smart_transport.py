"""The FHIR flow with SMART credentials in ClientOptions, over real sockets: the real server
started with `--fhir-clients` (one for the module), kick-off, polling and a file fetched, all
with the client's own token; refused keys, clients and scopes as one-line errors with their exit
status; the token renewed during a long run; pickled options in another process (spawned, or
forked like a local worker) getting a token of their own; and no secret in any message or log.

The command line (`cli --fhir`) is another branch's: these run the transport as it would.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import multiprocessing
import pickle
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import httpx
import pytest

import export_tally.transport.client as client_module
from export_tally.cli.exitcodes import ExitCode, exit_code_for
from export_tally.errors import ServerUnreachableError, TokenRefusedError
from export_tally.transport.client import ClientOptions, client_for, make_client
from export_tally.transport.fhir_bulk import ExportRequest, delete_job, kick_off, poll_status
from export_tally.transport.fhir_manifest import Manifest
from export_tally.transport.retry import Clock, OutageEvent, RetryPolicy
from export_tally.transport.smart import SmartAuth
from export_tally.transport.smart_credentials import SmartCredentials, load_credentials
from tests.support.cli_run import one_line, run_cli
from tests.support.counting_relay import counting_relay
from tests.support.fixture_server import Answer, fixture_server, json_answer
from tests.support.servers import Reaper, RunningServer, running_server
from tests.support.smart_keys import TestClientKey, ec_client, rsa_client, write_clients_file

ROOT = Path(__file__).resolve().parents[2]
DEMO = ExportRequest("demo")


@dataclass
class SmartFhir:
    server: RunningServer
    rsa: TestClientKey
    ec: TestClientKey
    keys: Path  # the directory of the key files

    @property
    def fhir(self) -> str:
        return f"{self.server.url}/fhir"

    def credentials(
        self, kind: str, client_id: str | None = None, scope: str | None = None
    ) -> SmartCredentials:
        """The credentials of the RSA client (its PEM file) or the EC one (its JWK set)."""
        client: TestClientKey = getattr(self, kind)
        return load_credentials(client_id or client.client_id, self.keys / kind, scope)

    def options(self, credentials: SmartCredentials) -> ClientOptions:
        return ClientOptions(self.fhir, timeout=60, credentials=credentials)


@pytest.fixture(scope="module")
def smart_fhir(
    tmp_path_factory: pytest.TempPathFactory,
    warm_server: RunningServer,  # demo is in the shared cache: the jobs complete at once
    server_cache_dir: Path,
    reaper: Reaper,
) -> Iterator[SmartFhir]:
    keys = tmp_path_factory.mktemp("smart-keys")
    rsa, ec = rsa_client(), ec_client()
    (keys / "rsa").write_bytes(rsa.pem())
    (keys / "ec").write_text(json.dumps({"keys": [ec.private_jwk()]}))
    clients = write_clients_file(keys / "clients.json", rsa, ec)
    # Retry-After: 0, so the polls take no time; debug: whatever the server would log, it logs.
    args = ["--fhir-clients", str(clients), "--workers", "1", "--log-level", "debug",
            "--fhir-poll-after", "0"]  # fmt: skip
    with running_server(args, cache_dir=server_cache_dir, reaper=reaper) as server:
        yield SmartFhir(server, rsa, ec, keys)


def export_demo(client: httpx.Client, options: ClientOptions) -> tuple[str, Manifest]:
    status_url = kick_off(client, options, DEMO)
    return status_url, poll_status(client, options, status_url, DEMO.types)


def tokens_obtained(client: httpx.Client) -> int:
    """How many tokens this client has got so far."""
    assert isinstance(client.auth, SmartAuth)
    return client.auth.tokens.obtained


def sent_tokens(client: httpx.Client) -> list[str]:
    """The Authorization header of every answer this client gets from now on (a response hook)."""
    seen: list[str] = []
    client.event_hooks["response"].append(
        lambda response: seen.append(response.request.headers.get("authorization", ""))
    )
    return seen


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_kick_off_poll_and_fetch_all_carry_the_token(smart_fhir: SmartFhir, kind: str) -> None:
    options = smart_fhir.options(smart_fhir.credentials(kind))
    with make_client(options) as client:
        seen = sent_tokens(client)
        status_url, manifest = export_demo(client, options)
        assert manifest.requires_access_token is True
        file = manifest.files[0]
        response = client.get(file.url)
        assert response.status_code == 200, response.text
        assert response.content.count(b"\n") == file.count
        assert delete_job(client, options, status_url) is True
        obtained = tokens_obtained(client)
    assert obtained == 1  # one token for the whole flow
    assert len(seen) >= 4 and len(set(seen)) == 1 and seen[0].startswith("Bearer ")
    # The token is what let them in: the same file without it is refused.
    assert httpx.get(file.url).status_code == 401


def refusal(smart_fhir: SmartFhir, credentials: SmartCredentials) -> TokenRefusedError:
    options = smart_fhir.options(credentials)
    with make_client(options) as client, pytest.raises(TokenRefusedError) as refused:
        kick_off(client, options, DEMO)
    return refused.value


def assert_one_secret_free_line(error: Exception, *secrets: str) -> str:
    message = str(error)
    assert exit_code_for(error) == ExitCode.USAGE
    assert "\n" not in message and len(message) < 400
    for secret in secrets:
        assert secret not in message
    return message


def test_a_key_the_server_does_not_know_is_refused(smart_fhir: SmartFhir, tmp_path: Path) -> None:
    stranger = ec_client("bulk-ec", kid="ec-1")  # the registered id and kid, another key
    key_file = tmp_path / "stranger.json"
    key_file.write_text(json.dumps({"keys": [stranger.private_jwk()]}))
    error = refusal(smart_fhir, load_credentials("bulk-ec", key_file))
    message = assert_one_secret_free_line(error, stranger.private_jwk()["d"])
    assert message == (
        f"the token endpoint {smart_fhir.fhir}/auth/token refused client 'bulk-ec' (HTTP 400): "
        "invalid_client: the signature does not verify with any key registered for this client"
    )


def test_an_unknown_client_id_is_refused(smart_fhir: SmartFhir) -> None:
    error = refusal(smart_fhir, smart_fhir.credentials("rsa", client_id="nobody"))
    message = assert_one_secret_free_line(error)
    assert "refused client 'nobody' (HTTP 400): invalid_client: " in message
    assert "iss" in message


def test_a_scope_the_server_refuses(smart_fhir: SmartFhir) -> None:
    error = refusal(smart_fhir, smart_fhir.credentials("ec", scope="system/*.write"))
    message = assert_one_secret_free_line(error)
    assert "(HTTP 400): invalid_scope: none of the scopes asked for is offered" in message


def test_the_token_is_renewed_during_a_long_run(smart_fhir: SmartFhir) -> None:
    """A run longer than a token's life, on the token's clock: the token is renewed before the
    server would refuse it (not after a 401), and every request is let in."""
    now = [0.0]
    options = smart_fhir.options(smart_fhir.credentials("rsa"))
    with make_client(options, token_clock=lambda: now[0]) as client:
        seen = sent_tokens(client)
        status_url = kick_off(client, options, DEMO)
        now[0] += 241  # 59 s left of the 300 s token: time to renew
        manifest = poll_status(client, options, status_url, DEMO.types)
        now[0] += 241
        response = client.get(manifest.files[0].url)
        obtained = tokens_obtained(client)
    assert response.status_code == 200
    assert obtained == 3
    assert len(set(seen)) == 3  # each part of the run with its own token
    assert seen[0] != seen[-1]


@pytest.mark.slow
def test_pickled_options_in_another_process_get_their_own_token(smart_fhir: SmartFhir) -> None:
    credentials = smart_fhir.credentials("ec")
    options = smart_fhir.options(credentials)
    with make_client(options) as client:
        _, manifest = export_demo(client, options)
        url = manifest.files[0].url
        mine = client.get(url).request.headers["authorization"]
    sent = pickle.dumps((options, url))
    assert smart_fhir.ec.private_jwk()["d"].encode() not in sent  # DER bytes, never the JWK
    assert mine.encode() not in sent
    child = subprocess.run(
        [sys.executable, "-m", "tests.support.smart_child"],
        input=sent, capture_output=True, check=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    answer = json.loads(child.stdout)
    assert (answer["status"], answer["obtained"]) == (200, 1)
    assert answer["lines"] == manifest.files[0].count
    assert answer["token_sha256"] != hashlib.sha256(mine.encode()).hexdigest()


def test_a_token_endpoint_outage_is_waited_out(smart_fhir: SmartFhir) -> None:
    """The server (its token endpoint with it) goes down just as the token must be renewed: the
    token request's failure is an outage of the poll that needed it, waited out, and told."""
    port = int(smart_fhir.server.url.rsplit(":", 1)[1])
    with counting_relay(port) as relay, socket.socket() as dead:
        dead.bind(("127.0.0.1", 0))  # bound, never listening: connections to it are refused
        options = dataclasses.replace(
            smart_fhir.options(smart_fhir.credentials("rsa")),
            base_url=f"{relay.url}/fhir", policy=RetryPolicy(max_outage=60),
        )  # fmt: skip
        now = [0.0]
        events: list[OutageEvent] = []
        slept: list[float] = []

        def heal(seconds: float) -> None:  # the outage ends while the loop waits
            slept.append(seconds)
            relay.switch(port)

        with make_client(options, token_clock=lambda: now[0]) as client:
            status_url = kick_off(client, options, DEMO)
            relay.switch(dead.getsockname()[1])
            now[0] += 241  # the next request needs a new token
            manifest = poll_status(client, options, status_url, DEMO.types,
                                   clock=Clock(sleep=heal), on_outage=events.append)  # fmt: skip
            obtained = tokens_obtained(client)
    assert manifest.files and obtained == 2
    assert len(slept) == 1
    assert [event.back is None for event in events] == [True, False]
    assert "POST /fhir/auth/token" in relay.requests[-3:-1]


def test_a_token_the_fhir_server_refuses_names_the_smart_flags(smart_fhir: SmartFhir) -> None:
    """A FHIR server (a fixture) that refuses every token, even a new one: after the one more
    try with a new token, the run ends (exit 3) saying which flags to check."""
    seen: list[tuple[str, dict[str, str]]] = []
    configuration = {"token_endpoint": f"{smart_fhir.fhir}/auth/token"}
    routes = {"/fhir/.well-known/smart-configuration": json_answer(configuration),
              "/fhir/Group/demo/$export": Answer(b"{}", require=("Authorization", "never"))}  # fmt: skip
    with fixture_server(routes, seen) as home:
        options = dataclasses.replace(
            smart_fhir.options(smart_fhir.credentials("rsa")), base_url=f"{home}/fhir"
        )
        with make_client(options) as client, pytest.raises(ServerUnreachableError) as caught:
            kick_off(client, options, DEMO)
        obtained = tokens_obtained(client)
    assert exit_code_for(caught.value) == ExitCode.UNREACHABLE
    assert str(caught.value) == (
        f"GET {home}/fhir/Group/demo/$export?_type=Observation: the server refused the "
        "credentials (HTTP 401); check --client-id and --scope"
    )
    kicks = [headers["authorization"] for path, headers in seen if "$export" in path]
    assert len(kicks) == 2 and kicks[0] != kicks[1]  # a new token for the one more try
    assert obtained == 2


class VirtualClock:
    """Time that passes only when the retrying loop waits: an outage of minutes, at once."""

    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    @property
    def clock(self) -> Clock:
        return Clock(wall=lambda: self.now, monotonic=lambda: self.now, sleep=self.sleep)


@pytest.mark.slow
def test_a_token_endpoint_that_stays_down_ends_the_run_as_an_outage(smart_fhir: SmartFhir) -> None:
    """A token endpoint that answers 5xx (here 501: the fixture takes no POST) is down, not a
    refusal of the client: waited out for --max-outage, then exit 3, naming it."""
    with fixture_server({}) as authority:  # no route: a POST is answered 501
        configuration = {"token_endpoint": f"{authority}/token"}
        routes = {"/fhir/.well-known/smart-configuration": json_answer(configuration)}
        with fixture_server(routes) as home:
            options = dataclasses.replace(
                smart_fhir.options(smart_fhir.credentials("ec")),
                base_url=f"{home}/fhir", policy=RetryPolicy(max_outage=300),
            )  # fmt: skip
            virtual = VirtualClock()
            with make_client(options) as client, pytest.raises(ServerUnreachableError) as caught:
                kick_off(client, options, DEMO, clock=virtual.clock)
    error = caught.value
    assert exit_code_for(error) == ExitCode.UNREACHABLE
    assert str(error) == (
        f"GET {home}/fhir/Group/demo/$export?_type=Observation failed: getting an access token: "
        f"{authority}/token answered HTTP 501; the server was unreachable for 300 s "
        "(--max-outage 300)"
    )
    assert virtual.now == 300


def _forked_fetch(options: ClientOptions, url: str, pipe: Connection) -> None:
    response = client_for(options).get(url)
    pipe.send((response.status_code, response.request.headers["authorization"]))


@pytest.mark.slow
def test_a_forked_worker_gets_its_own_token(
    smart_fhir: SmartFhir, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A local worker process is forked from the tool: the tool's client (and its token) stays
    with the tool, the worker makes its own."""
    monkeypatch.setattr(client_module, "_clients", {})  # this test's clients only
    options = smart_fhir.options(smart_fhir.credentials("rsa"))
    try:
        client = client_for(options)
        _, manifest = export_demo(client, options)
        url = manifest.files[0].url
        mine = client.get(url).request.headers["authorization"]
        context = multiprocessing.get_context("fork")
        receiving, sending = context.Pipe(duplex=False)
        worker = context.Process(target=_forked_fetch, args=(options, url, sending))
        worker.start()
        status, theirs = receiving.recv()
        worker.join(60)
        assert worker.exitcode == 0
        assert status == 200
        assert theirs != mine
        assert client_for(options).get(url).request.headers["authorization"] == mine
    finally:
        for made in client_module._clients.values():
            made.close()


def test_no_secret_in_the_options_or_the_logs(
    smart_fhir: SmartFhir, caplog: pytest.LogCaptureFixture
) -> None:
    credentials = smart_fhir.credentials("rsa")
    options = smart_fhir.options(credentials)
    pem_body = b"".join(smart_fhir.rsa.pem().splitlines()[1:-1]).decode()
    assert "key=<redacted>" in repr(options)
    assert pem_body[:40] not in repr(options)
    assert dataclasses.replace(options) == options  # hashable and comparable: client_for's key
    with caplog.at_level(logging.DEBUG), make_client(options) as client:
        seen = sent_tokens(client)
        export_demo(client, options)
    token = seen[0].removeprefix("Bearer ")
    logged = caplog.text + "".join(smart_fhir.server.log)
    assert "auth/token" in caplog.text  # the log did record the token request...
    assert token not in logged  # ...but not the token,
    assert pem_body[:40] not in logged  # nor the key
    assert "eyJ" not in logged  # nor an assertion (a JWT's header starts so)


def test_the_token_endpoint_may_be_elsewhere_and_the_token_stays_home(
    smart_fhir: SmartFhir,
) -> None:
    """A FHIR server (a fixture) whose token endpoint is another host's (the real server's): the
    token is got there and sent to the FHIR server, and not to a third host, even where going
    there is allowed (--follow-redirects-anywhere: a manifest may name files elsewhere)."""
    home_seen: list[tuple[str, dict[str, str]]] = []
    away_seen: list[tuple[str, dict[str, str]]] = []
    configuration = {"token_endpoint": f"{smart_fhir.fhir}/auth/token"}
    home_routes = {"/fhir/.well-known/smart-configuration": json_answer(configuration),
                   "/fhir/data": Answer(b"{}")}  # fmt: skip
    with fixture_server(home_routes, home_seen) as home, fixture_server(
        {"/data": Answer(b"{}")}, away_seen
    ) as away:  # fmt: skip
        options = dataclasses.replace(
            smart_fhir.options(smart_fhir.credentials("ec")),
            base_url=f"{home}/fhir", redirects_anywhere=True,
        )  # fmt: skip
        with make_client(options) as client:
            assert client.get(f"{home}/fhir/data").status_code == 200
            assert client.get(f"{away}/data").status_code == 200
    assert home_seen[-1][1]["authorization"].startswith("Bearer ")
    assert [path for path, _ in away_seen] == ["/data"]
    assert "authorization" not in away_seen[0][1]


def test_the_command_line_sends_its_credentials_with_the_first_request(
    smart_fhir: SmartFhir,
) -> None:
    """From argv to the first request: `cli demo --client-id --private-key` asks the server it
    counts from for its SMART configuration. The CSV export API (the `--server` URL) has none,
    so the run ends there, exit 4, in one line. (`cli --fhir BASE_URL` reads it under the FHIR
    base instead: see the FHIR command line's tests.)"""
    outcome = run_cli("demo", "--server", smart_fhir.server.url, "--no-checkpoint",
                      "--client-id", "bulk-rsa", "--private-key", str(smart_fhir.keys / "rsa"))  # fmt: skip
    assert outcome.status == ExitCode.PROTOCOL
    assert one_line(outcome.stderr) == (
        f"cli: error: {smart_fhir.server.url}/.well-known/smart-configuration: no SMART "
        "configuration with a token_endpoint (HTTP 404); does this server use SMART Backend "
        "Services?"
    )
    assert outcome.stdout == ""
