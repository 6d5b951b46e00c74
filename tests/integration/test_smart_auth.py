"""SMART Backend Services over real sockets: the real server started with `--fhir-clients`, its
discovery document and token endpoint, and the tool's token client against it.

One server for the module (`smart_server`, from tests/support/smart_server.py), its keys made at
test time. What `authorize` does with a token is in tests/unit/test_smart_authorize.py, and the
FHIR routes behind it in test_fhir_smart_export.py: here, every rule of the token endpoint, and
that nothing secret reaches the server's log or the tool's messages.
"""

from __future__ import annotations

import functools
import json
import pickle
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from export_tally.errors import SmartDiscoveryError, TokenRefusedError
from export_tally.transport.smart import SmartAuth, SmartTokens
from export_tally.transport.smart_credentials import load_credentials
from tests.support.servers import Reaper
from tests.support.smart_keys import TestClientKey, ec_client, rsa_client, token_form
from tests.support.smart_server import SmartServer, running_smart_server


@pytest.fixture(scope="module")
def smart_server(tmp_path_factory: pytest.TempPathFactory, reaper: Reaper) -> Iterator[SmartServer]:
    # --log-level debug: whatever the server would log about a request, it logs.
    args = ["--workers", "1", "--no-cache", "--log-level", "debug"]
    with running_smart_server(tmp_path_factory.mktemp("smart"), reaper, args) as server:
        yield server


def test_the_configuration_names_the_token_endpoint_and_what_it_accepts(
    smart_server: SmartServer,
) -> None:
    response = httpx.get(f"{smart_server.fhir}/.well-known/smart-configuration")
    assert response.status_code == 200
    document = response.json()
    assert document["token_endpoint"] == smart_server.token_url  # absolute
    assert document["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert document["token_endpoint_auth_signing_alg_values_supported"] == ["RS384", "ES384"]
    assert document["grant_types_supported"] == ["client_credentials"]
    assert {"system/*.read", "system/*.rs"} <= set(document["scopes_supported"])
    assert "client-confidential-asymmetric" in document["capabilities"]


@pytest.mark.parametrize("kind", ["rsa", "ec"])
@pytest.mark.parametrize("scope", ["system/*.read", "system/*.rs"])
def test_a_good_assertion_gets_a_token(smart_server: SmartServer, kind: str, scope: str) -> None:
    client: TestClientKey = getattr(smart_server, kind)
    response = smart_server.ask(token_form(client.assertion(smart_server.token_url), scope))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert 0 < body["expires_in"] <= 300
    assert body["scope"] == scope
    assert len(body["access_token"]) >= 32
    assert response.headers["cache-control"] == "no-store"
    # Nothing secret in the server's log, even at debug level.
    log = "".join(smart_server.server.log)
    assert body["access_token"] not in log


def test_a_replayed_jti_is_refused(smart_server: SmartServer) -> None:
    assertion = smart_server.ec.assertion(smart_server.token_url)
    assert smart_server.ask(token_form(assertion)).status_code == 200
    replayed = smart_server.ask(token_form(assertion))
    assert replayed.status_code == 400
    assert replayed.json()["error"] == "invalid_client"
    assert "jti" in replayed.json()["error_description"]
    # A new assertion that reuses the jti is refused as well.
    jti = jwt.decode(assertion, options={"verify_signature": False})["jti"]
    again = smart_server.ask(token_form(smart_server.ec.assertion(smart_server.token_url, jti=jti)))
    assert again.json()["error"] == "invalid_client"


@functools.cache
def stranger() -> TestClientKey:
    """Another RSA key (made once, when first needed: not while tests are collected)."""
    return rsa_client()


def list_issuer(server: SmartServer) -> str:
    """An assertion whose `iss` is a list (PyJWT's encode refuses that: signed as raw JWS)."""
    claims = jwt.decode(server.rsa.assertion(server.token_url), options={"verify_signature": False})
    payload = json.dumps({**claims, "iss": [server.rsa.client_id]}).encode()
    return jwt.api_jws.encode(payload, server.rsa.key, algorithm="RS384",
                              headers={"kid": server.rsa.kid})  # fmt: skip


# case -> (the form, made for the server; the OAuth error; a word of its description)
REFUSALS: dict[str, tuple[Callable[[SmartServer], dict[str, str]], str, str]] = {
    "expired": (lambda s: token_form(s.rsa.assertion(s.token_url, exp=int(time.time()) - 60)),
                "invalid_client", "expired"),
    "too far ahead": (
        lambda s: token_form(s.rsa.assertion(s.token_url, exp=int(time.time()) + 900)),
        "invalid_client", "at most",
    ),
    "wrong key": (lambda s: token_form(s.rsa.assertion(s.token_url, key=stranger().key)),
                  "invalid_client", "signature"),
    "wrong audience": (lambda s: token_form(s.rsa.assertion(f"{s.server.url}/other/token")),
                       "invalid_client", "aud"),
    "HS256": (lambda s: token_form(s.rsa.assertion(s.token_url, algorithm="HS256",
                                                   key="a shared secret long enough for HMAC")),
              "invalid_client", "RS384"),
    "alg none": (lambda s: token_form(s.rsa.assertion(s.token_url, key=None, algorithm="none")),
                 "invalid_client", "RS384"),
    "unknown client": (lambda s: token_form(s.rsa.assertion(s.token_url, iss="x", sub="x")),
                       "invalid_client", "iss"),
    "iss not a string": (lambda s: token_form(list_issuer(s)), "invalid_client", "iss"),
    "sub is not iss": (lambda s: token_form(s.rsa.assertion(s.token_url, sub="other")),
                       "invalid_client", "sub"),
    "no jti": (lambda s: token_form(s.rsa.assertion(s.token_url, jti=None)),
               "invalid_client", "jti"),
    "unknown kid": (lambda s: token_form(s.rsa.assertion(s.token_url, kid="k9")),
                    "invalid_client", "kid"),
    "not a JWT": (lambda s: token_form("not.a.jwt"), "invalid_client", "JWT"),
    "wrong assertion type": (
        lambda s: token_form(s.rsa.assertion(s.token_url), client_assertion_type="jwt"),
        "invalid_client", "client_assertion_type",
    ),
    "write scope": (
        lambda s: token_form(s.rsa.assertion(s.token_url), "system/*.write patient/*.read"),
        "invalid_scope", "system/*.read",
    ),
    "no scope": (lambda s: token_form(s.rsa.assertion(s.token_url), ""), "invalid_scope", "scope"),
    "other grant": (
        lambda s: token_form(s.rsa.assertion(s.token_url), grant_type="authorization_code"),
        "unsupported_grant_type", "client_credentials",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", REFUSALS)
def test_a_bad_token_request_is_refused_with_its_oauth_error(
    smart_server: SmartServer, case: str
) -> None:
    make, error, word = REFUSALS[case]
    form = make(smart_server)
    response = smart_server.ask(form)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"] == error
    assert word in body["error_description"]
    assert form["client_assertion"] not in response.text
    assert form["client_assertion"] not in "".join(smart_server.server.log)


def test_a_token_request_that_is_not_a_form_is_refused(smart_server: SmartServer) -> None:
    response = httpx.post(smart_server.token_url, json={"grant_type": "client_credentials"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


# The tool's side: load_credentials, SmartTokens and SmartAuth against the same server.


@pytest.mark.parametrize("form", ["jwks", "pem"])
def test_the_tool_gets_a_token_with_a_jwk_set_or_a_pem_key(
    smart_server: SmartServer, form: str, tmp_path: Path
) -> None:
    client = smart_server.ec if form == "jwks" else smart_server.rsa
    key_file = tmp_path / f"key.{form}"
    if form == "jwks":
        key_file.write_text(f'{{"keys": [{json.dumps(client.private_jwk())}]}}')
    else:
        key_file.write_bytes(client.pem())
    credentials = load_credentials(client.client_id, key_file)
    tokens = SmartTokens(credentials, smart_server.fhir)
    with httpx.Client() as http:
        token = tokens.access_token(http)
        assert tokens.access_token(http) == token  # kept, not asked for again
    assert tokens.obtained == 1
    assert token not in repr(tokens)


def test_the_tool_renews_its_token_before_it_expires(
    smart_server: SmartServer, tmp_path: Path
) -> None:
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(smart_server.rsa.pem())
    now = [0.0]
    tokens = SmartTokens(
        load_credentials(smart_server.rsa.client_id, key_file), smart_server.fhir, lambda: now[0]
    )
    with httpx.Client() as http:
        first = tokens.access_token(http)
        now[0] += 239  # 61 s left of 300: still good
        assert tokens.access_token(http) == first
        now[0] += 2  # 59 s left: renewed, with a new assertion (a new jti) the server accepts
        second = tokens.access_token(http)
    assert second != first
    assert tokens.obtained == 2


def test_credentials_travel_to_worker_processes_and_never_show_the_key(
    smart_server: SmartServer, tmp_path: Path
) -> None:
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(smart_server.rsa.pem())
    credentials = load_credentials(smart_server.rsa.client_id, key_file)
    copy = pickle.loads(pickle.dumps(credentials))
    assert copy == credentials
    pem_body = b"".join(smart_server.rsa.pem().splitlines()[1:-1])
    assert pem_body not in pickle.dumps(credentials)  # DER bytes, not the PEM text
    assert "redacted" in repr(credentials)
    assert pem_body.decode()[:40] not in repr(credentials)
    with httpx.Client(auth=SmartAuth(SmartTokens(copy, smart_server.fhir), httpx.Client())) as h:
        # Any request carries the token; the configuration does not need one, but shows it sent.
        response = h.get(f"{smart_server.fhir}/.well-known/smart-configuration")
    assert response.request.headers["authorization"].startswith("Bearer ")


def test_a_refused_client_sees_the_oauth_error_and_no_secret(
    smart_server: SmartServer, tmp_path: Path
) -> None:
    stranger = ec_client("bulk-ec", kid="ec-1")  # the registered id and kid, another key
    key_file = tmp_path / "key.json"
    key_file.write_text(f'{{"keys": [{json.dumps(stranger.private_jwk())}]}}')
    tokens = SmartTokens(load_credentials("bulk-ec", key_file), smart_server.fhir)
    with httpx.Client() as http, pytest.raises(TokenRefusedError) as refused:
        tokens.access_token(http)
    message = str(refused.value)
    assert message.startswith(f"the token endpoint {smart_server.token_url} refused client")
    assert "invalid_client: the signature does not verify" in message
    assert "\n" not in message
    assert stranger.private_jwk()["d"] not in message


def test_a_server_without_smart_configuration_is_reported(smart_server: SmartServer) -> None:
    key_file = smart_server.key_dir / "rsa.pem"
    key_file.write_bytes(smart_server.rsa.pem())
    credentials = load_credentials(smart_server.rsa.client_id, key_file)
    tokens = SmartTokens(credentials, f"{smart_server.server.url}/api")  # no SMART there
    with httpx.Client() as http, pytest.raises(SmartDiscoveryError, match="HTTP 404"):
        tokens.access_token(http)
