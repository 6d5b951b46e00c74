"""`SmartAuthority.authorize` on a protected route, and the clients file's checks.

The FHIR routes that call `authorize` are not in this module's reach, so the test builds a small
Starlette app around the authority: its routes, plus one route that answers only with a token.
In-process (httpx's ASGITransport), with the authority's clock injected so a token can expire
without waiting; the real server's token endpoint is tested over sockets in
tests/integration/test_smart_auth.py.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from export_server.errors import ClientsFileError
from export_server.smart_auth import SmartAuthority
from export_server.smart_clients import load_clients
from tests.support.smart_keys import (
    TestClientKey,
    clients_document,
    ec_client,
    rsa_client,
    token_form,
    write_clients_file,
)

BASE = "http://testserver"
TOKEN_URL = f"{BASE}/fhir/auth/token"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def client_key() -> TestClientKey:
    return ec_client()


@pytest.fixture
def clock() -> Clock:
    import time

    return Clock(time.time())


@pytest.fixture
def app(client_key: TestClientKey, clock: Clock, tmp_path: Path) -> InProcess:
    clients = load_clients(write_clients_file(tmp_path / "clients.json", client_key))
    authority = SmartAuthority(clients, clock=clock)

    async def protected(request: Request) -> Response:
        refusal = authority.authorize(request)
        if refusal is not None:
            return refusal
        return JSONResponse({"client": request.state.smart_client_id})

    routes = [*authority.routes(), Route("/fhir/protected", protected)]
    return InProcess(Starlette(routes=routes))


class InProcess:
    """Requests to an ASGI app in this process, one event loop per request."""

    def __init__(self, app: Starlette) -> None:
        self.transport = httpx.ASGITransport(app=app)

    def request(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        async def send() -> httpx.Response:
            async with httpx.AsyncClient(transport=self.transport, base_url=BASE) as client:
                return await client.request(method, path, **kwargs)  # type: ignore[arg-type]

        return asyncio.run(send())

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: object) -> httpx.Response:
        return self.request("POST", path, **kwargs)


def token(app: InProcess, client_key: TestClientKey) -> str:
    response = app.post("/fhir/auth/token", data=token_form(client_key.assertion(TOKEN_URL)))
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def test_a_valid_token_is_accepted(app: InProcess, client_key: TestClientKey) -> None:
    response = app.get(
        "/fhir/protected", headers={"Authorization": f"Bearer {token(app, client_key)}"}
    )
    assert response.status_code == 200
    assert response.json() == {"client": client_key.client_id}


@pytest.mark.parametrize(
    ("authorization", "error"),
    [(None, None), ("Basic dXNlcjpwYXNz", None), ("Bearer ", None),
     ("Bearer not-a-token-we-gave", "invalid_token")],
    ids=["no header", "basic", "empty bearer", "unknown token"],
)  # fmt: skip
def test_a_missing_or_invalid_token_is_a_401_operation_outcome(
    app: InProcess, authorization: str | None, error: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = app.get("/fhir/protected", headers=headers)
    assert_unauthorized(response, error)


def test_an_expired_token_is_a_401_operation_outcome(
    app: InProcess, client_key: TestClientKey, clock: Clock
) -> None:
    headers = {"Authorization": f"Bearer {token(app, client_key)}"}
    clock.now += 299
    assert app.get("/fhir/protected", headers=headers).status_code == 200
    clock.now += 1
    response = app.get("/fhir/protected", headers=headers)
    assert_unauthorized(response, "invalid_token")
    assert "expired" in response.json()["issue"][0]["diagnostics"]


def assert_unauthorized(response: httpx.Response, error: str | None) -> None:
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/fhir+json")
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert (f'error="{error}"' in challenge) if error else ("error=" not in challenge)
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] == "error"
    assert outcome["issue"][0]["code"] == "login"


def test_a_jti_is_remembered_until_its_assertion_expires(
    app: InProcess, client_key: TestClientKey, clock: Clock
) -> None:
    assertion = client_key.assertion(TOKEN_URL)
    assert app.post("/fhir/auth/token", data=token_form(assertion)).status_code == 200
    clock.now += 290  # still within its exp: a replay
    replay = app.post("/fhir/auth/token", data=token_form(assertion))
    assert "jti" in replay.json()["error_description"]


# The clients file: each bad shape is one line naming the entry.

SHORT_RSA = {  # the public numbers of a 1024-bit key
    k: v
    for k, v in json.loads(
        RSAAlgorithm.to_jwk(
            rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
        )
    ).items()
    if k in ("n", "e")
}


def _bad_key(change: dict[str, object]) -> dict[str, object]:
    document = clients_document(rsa_client())
    document["clients"][0]["jwks"]["keys"][0].update(change)
    return document


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("not json", "not JSON"),
        ({"clients": []}, "at least one client"),
        ({"clients": [{"jwks": {"keys": []}}]}, "client_id must be"),
        ({"clients": [{"client_id": "a", "jwks": {}}]}, "jwks must be"),
        (_bad_key({"kty": "oct"}), "kty must be RSA or EC"),
        (_bad_key({"alg": "RS256"}), "alg must be RS384"),
        (_bad_key({"d": "AAAA"}), "private key"),
        (_bad_key(SHORT_RSA), "at least 2048 bits"),
        ({"clients": [{"client_id": "a", "jwks": {"keys": [{"kty": "EC", "crv": "P-256",
                                                            "x": "", "y": ""}]}}]}, "P-384"),
        ({"clients": [clients_document(ec_client("a"))["clients"][0]] * 2}, "appears twice"),
    ],
    ids=["not json", "no clients", "no id", "no keys", "oct key", "rs256", "private", "short rsa",
         "p-256", "twice"],
)  # fmt: skip
def test_a_bad_clients_file_is_one_line_naming_what_is_wrong(
    tmp_path: Path, document: object, message: str
) -> None:
    path = tmp_path / "clients.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    with pytest.raises(ClientsFileError, match=message) as raised:
        load_clients(path)
    assert str(raised.value).startswith(str(path))
    assert "\n" not in str(raised.value)


def test_a_missing_clients_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ClientsFileError, match="cannot read it"):
        load_clients(tmp_path / "nowhere.json")
