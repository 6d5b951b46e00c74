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
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from export_server.__main__ import main as server_main
from export_server.errors import ClientsFileError
from export_server.smart_auth import SmartAuthority
from export_server.smart_clients import load_clients
from tests.support.smart_keys import (
    TestClientKey,
    clients_document,
    ec_client,
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


def _short_rsa() -> dict[str, object]:
    """The public numbers of a 1024-bit RSA key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    return {k: v for k, v in json.loads(RSAAlgorithm.to_jwk(key.public_key())).items()
            if k in ("n", "e")}  # fmt: skip


def _with_key(client_key: TestClientKey, change: dict[str, object]) -> dict[str, object]:
    document = clients_document(client_key)
    document["clients"][0]["jwks"]["keys"][0].update(change)
    return document


# case -> (the file's content, made from the module's EC client; what the message says)
BAD_FILES: dict[str, tuple[Callable[[TestClientKey], object], str]] = {
    "not json": (lambda _: "not json", "not JSON"),
    "no clients": (lambda _: {"clients": []}, "at least one client"),
    "no id": (lambda _: {"clients": [{"jwks": {"keys": []}}]}, "client_id must be"),
    "no keys": (lambda _: {"clients": [{"client_id": "a", "jwks": {}}]}, "jwks must be"),
    "oct key": (lambda c: _with_key(c, {"kty": "oct"}), "kty must be RSA or EC"),
    "es256": (lambda c: _with_key(c, {"alg": "ES256"}), "alg must be ES384"),
    "private": (lambda c: _with_key(c, {"d": "AAAA"}), "private key"),
    "short rsa": (lambda c: _with_key(c, {"kty": "RSA", "alg": "RS384", **_short_rsa()}),
                  "at least 2048 bits"),
    "p-256": (lambda c: _with_key(c, {"crv": "P-256"}), "P-384"),
    "twice": (lambda c: {"clients": clients_document(c, c)["clients"]}, "appears twice"),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD_FILES)
def test_a_bad_clients_file_is_one_line_naming_what_is_wrong(
    tmp_path: Path, client_key: TestClientKey, case: str
) -> None:
    make, message = BAD_FILES[case]
    document = make(client_key)
    path = tmp_path / "clients.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    with pytest.raises(ClientsFileError, match=message) as raised:
        load_clients(path)
    assert str(raised.value).startswith(str(path))
    assert "\n" not in str(raised.value)


def test_a_missing_clients_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ClientsFileError, match="cannot read it"):
        load_clients(tmp_path / "nowhere.json")


def test_the_server_refuses_a_bad_clients_file_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before it binds a port or starts a generator: `main` returns at once."""
    clients = tmp_path / "clients.json"
    clients.write_text('{"clients": [{"client_id": "x", "jwks": {"keys": []}}]}')
    assert server_main(["--port", "0", "--no-cache", "--fhir-clients", str(clients)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"server: --fhir-clients {clients}: clients[0]: jwks must be "
        '{"keys": [...]} with at least one key'
    ]
