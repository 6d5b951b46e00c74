"""The tool's `SmartAuth` against a route that `SmartAuthority.authorize` protects, over a socket.

The FHIR routes that call `authorize` live on another branch, so the app is built here around the
authority (its routes plus one protected route) and served by uvicorn in a thread on a free
loopback port. The server can be "restarted" (a new authority, which knows no token given
before): a token the tool still holds as fresh is then refused with a 401, and the tool gets a
new one and tries the request again.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from export_server.smart_auth import SmartAuthority
from export_server.smart_clients import load_clients
from export_tally.transport.smart import SmartAuth, SmartTokens
from export_tally.transport.smart_credentials import load_credentials
from tests.support.smart_keys import TestClientKey, rsa_client, write_clients_file


@dataclass
class Protected:
    url: str
    client: TestClientKey
    restart: Callable[[], None]  # a new authority for the same clients: every token forgotten


@pytest.fixture(scope="module")
def protected(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Protected]:
    client = rsa_client()
    clients = write_clients_file(tmp_path_factory.mktemp("bearer") / "clients.json", client)
    app = Starlette()

    def restart() -> None:
        authority = SmartAuthority(load_clients(clients))

        async def data(request: Request) -> Response:
            refusal = authority.authorize(request)
            return refusal or JSONResponse({"client": request.state.smart_client_id})

        app.router.routes[:] = [*authority.routes(), Route("/fhir/data", data)]

    restart()
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:  # uvicorn sets it once it listens
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Protected(f"http://127.0.0.1:{port}", client, restart)
    finally:
        server.should_exit = True
        thread.join(10)


def test_a_token_the_server_forgot_is_renewed_after_its_401(
    protected: Protected, tmp_path: Path
) -> None:
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(protected.client.pem())
    tokens = SmartTokens(load_credentials(protected.client.client_id, key_file),
                         f"{protected.url}/fhir")  # fmt: skip
    with httpx.Client() as token_client, httpx.Client(
        auth=SmartAuth(tokens, token_client)
    ) as http:  # fmt: skip
        first = http.get(f"{protected.url}/fhir/data")
        assert first.status_code == 200
        assert first.json() == {"client": protected.client.client_id}
        assert tokens.obtained == 1
        protected.restart()  # the tool's token is still fresh by its own clock
        second = http.get(f"{protected.url}/fhir/data")
        assert second.status_code == 200
        assert [r.status_code for r in second.history] == [401]  # then a new token, once
        assert tokens.obtained == 2


def test_without_a_token_the_route_answers_401(protected: Protected) -> None:
    response = httpx.get(f"{protected.url}/fhir/data")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["resourceType"] == "OperationOutcome"
