"""The FHIR routes behind an authority (the SmartAuthority seam), over a real socket.

The real authority (SMART Backend Services) is built elsewhere; here a stand-in that knows one
token shows what the routes do with any authority: every FHIR route asks it first, its own routes
are served, and the manifest says `requiresAccessToken: true`. The app is the real one, from
`create_app`, served by uvicorn on a free port in a thread of this process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from export_server.app import ServerConfig, create_app
from export_server.bodies import Bodies
from export_server.cache import Cache
from export_server.fhir_access import SmartAuthority
from export_server.fhir_outcome import outcome_response
from export_server.pool import GeneratorPool
from tests.support.fhir import kick_off, wait_for_manifest
from tests.support.servers import RunningServer

TOKEN = {"Authorization": "Bearer let-me-in"}


class StandInAuthority:
    """Lets in the one token `let-me-in`; serves a discovery document."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def authorize(self, request: Request) -> Response | None:
        self.asked.append(request.url.path)
        if request.headers.get("authorization") == TOKEN["Authorization"]:
            return None
        return outcome_response(401, "login", "no valid access token")

    def routes(self) -> list[BaseRoute]:
        async def configuration(request: Request) -> Response:
            return JSONResponse({"token_endpoint": str(request.base_url) + "fhir/token"})

        return [Route("/fhir/.well-known/smart-configuration", configuration)]


@pytest.fixture(scope="module")
def authority() -> StandInAuthority:
    return StandInAuthority()


@pytest.fixture(scope="module")
def guarded_url(
    authority: StandInAuthority, warm_server: RunningServer, server_cache_dir: Path
) -> Iterator[str]:
    """The URL of the real app behind the stand-in, on the session's cache (warm for demo)."""
    seam: SmartAuthority = authority
    bodies = Bodies(GeneratorPool(1), Cache(server_cache_dir))
    app = create_app(ServerConfig(), bodies, smart=seam)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:  # uvicorn sets it once it listens
        if not thread.is_alive():
            raise RuntimeError("the server did not start")
        thread.join(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()


def test_every_fhir_route_asks_the_authority(guarded_url: str, authority: StandInAuthority) -> None:
    fhir = f"{guarded_url}/fhir"
    with httpx.Client(timeout=30) as client:
        refused = client.get(f"{fhir}/Group/demo/$export", headers={"Prefer": "respond-async"})
        assert refused.status_code == 401
        assert refused.json()["issue"][0]["code"] == "login"
        status_url = kick_off(client, f"{fhir}/Group/demo/$export", TOKEN, _type="Patient")
        assert client.get(status_url).status_code == 401
        done, _ = wait_for_manifest(client, status_url, TOKEN)
        manifest = done.json()
        assert manifest["requiresAccessToken"] is True
        file_url = manifest["output"][0]["url"]
        assert client.get(file_url).status_code == 401
        assert client.get(file_url, headers=TOKEN).status_code == 200
        assert client.delete(status_url).status_code == 401
        assert client.delete(status_url, headers=TOKEN).status_code == 202
        # The capability statement and the authority's own routes are open.
        metadata = client.get(f"{fhir}/metadata").json()
        assert metadata["rest"][0]["security"]["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
        discovery = client.get(f"{fhir}/.well-known/smart-configuration")
        assert discovery.json()["token_endpoint"].endswith("/fhir/token")
    asked = set(authority.asked)
    assert {"/fhir/Group/demo/$export", status_url.split(guarded_url)[1]} <= asked
    assert "/fhir/metadata" not in asked


def test_without_an_authority_the_manifest_needs_no_token(warm_server: RunningServer) -> None:
    with httpx.Client(timeout=30) as client:
        status_url = kick_off(client, f"{warm_server.url}/fhir/Group/demo/$export", _type="Patient")
        assert wait_for_manifest(client, status_url)[0].json()["requiresAccessToken"] is False
