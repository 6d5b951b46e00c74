"""The HTTP API of docs/server.md, built by `create_app`; importing this module starts nothing."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from export_server.bodies import Bodies, etag_of
from export_server.dataset import EXPORTS, Download, downloads_of, find_download
from export_server.errors import InvalidUuidError
from export_server.faults import DroppedBody, FaultConfig, FaultInjector, FaultMiddleware, fault_of
from export_server.pool import GeneratorPool
from export_server.ranges import UnsatisfiableRangeError, parse_range, resolve_range
from export_server.uuids import parse_uuid

log = logging.getLogger("export_server")

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
# The API's description and its two browsers, as FastAPI generated them for this API (the front
# was a FastAPI app): path -> (file in API_DOCS, media type). Served as they are.
API_DOCS = Path(__file__).with_name("api_docs")
DOC_PAGES = {
    "/openapi.json": ("openapi.json", "application/json"),
    "/docs": ("docs.html", "text/html"),
    "/docs/oauth2-redirect": ("oauth2-redirect.html", "text/html"),
    "/redoc": ("redoc.html", "text/html"),
}


@dataclass(frozen=True)
class ServerConfig:
    """Everything that changes how the server answers."""

    faults: FaultConfig = field(default_factory=FaultConfig)
    ranges: bool = True


class _Route(Route):
    """A route that answers only `methods`, and a 405 naming them in their order.

    Starlette's own routes also answer HEAD when they answer GET, and list the methods of a 405's
    `Allow` in a set's order; the API's routes answered GET alone, as FastAPI's do.
    """

    def __init__(
        self, path: str, endpoint: Callable[[Request], Awaitable[Response]], *methods: str
    ) -> None:
        super().__init__(path, endpoint, methods=list(methods))
        self.methods = set(methods)  # without the HEAD Starlette adds; `matches` looks at it
        self.allow = ", ".join(methods)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.methods is not None  # set above
        if scope["method"] not in self.methods:
            raise HTTPException(405, headers={"Allow": self.allow})
        await self.app(scope, receive, send)


async def _http_error(request: Request, exc: Exception) -> Response:
    """404, 405 and the like, with a JSON `detail` (FastAPI's answer, not Starlette's text)."""
    assert isinstance(exc, HTTPException)
    return JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)


async def _invalid_download_id(request: Request, exc: Exception) -> Response:
    """422 for a download id that is not a UUID, in the words of pydantic, which checked it when
    the front was a FastAPI app."""
    reason = str(exc)
    error = {
        "type": "uuid_parsing",
        "loc": ["path", "download_id"],
        "msg": f"Input should be a valid UUID, {reason}",
        "input": request.path_params["download_id"],
        "ctx": {"error": reason},
    }
    return JSONResponse({"detail": [error]}, 422)


def _doc_page(name: str, media_type: str) -> Callable[[Request], Awaitable[Response]]:
    async def serve(request: Request) -> Response:
        return Response((API_DOCS / name).read_bytes(), media_type=media_type)

    return serve


def create_app(config: ServerConfig | None = None, bodies: Bodies | None = None) -> Starlette:
    """The export server's ASGI app.

    `bodies` serves the CSV bodies (default: one generator process, no cache). The app's lifespan
    starts and stops it, so run the app with lifespan events (uvicorn does).
    """
    config = config or ServerConfig()
    source = bodies or Bodies(GeneratorPool(1))
    injector = FaultInjector(config.faults)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await source.start()
        try:
            yield
        finally:
            await source.close()

    def lookup(request: Request) -> Download:
        # The id is checked first: a malformed one is 422 whatever the export.
        download_id = parse_uuid(request.path_params["download_id"])
        export_id: str = request.path_params["export_id"]
        if export_id not in EXPORTS:
            raise HTTPException(404, "Export not found")
        download = find_download(export_id, download_id)
        if download is None:
            raise HTTPException(404, "Download not found")
        return download

    async def list_exports(request: Request) -> Response:
        return JSONResponse({"data": {"export_ids": list(EXPORTS)}})

    async def get_export(request: Request) -> Response:
        export_id: str = request.path_params["export_id"]
        if export_id not in EXPORTS:
            raise HTTPException(404, "Export not found")
        ids = [str(d.id) for d in downloads_of(export_id)]
        return JSONResponse({"data": {"id": export_id, "download_ids": ids}})

    async def get_download(request: Request) -> Response:
        return JSONResponse({"data": lookup(request).metadata()})

    async def get_data(request: Request) -> Response:
        download = lookup(request)
        fault = fault_of(request)
        size = source.size(download)
        if not config.ranges:
            return DroppedBody(
                source.stream(download), {}, 200, fault.drop_point(size), media_type=CSV_MEDIA_TYPE
            )

        etag = etag_of(download)
        # The size is known before a byte is generated, like the ETag: every answer can carry it.
        headers = {"Accept-Ranges": "bytes", "ETag": etag}
        spec = parse_range(request.headers.get("range"))
        if_range = request.headers.get("if-range")
        if spec is not None and if_range is not None and if_range != etag:
            spec = None  # the client's copy is stale: send the whole new body
        if spec is None:
            headers["Content-Length"] = str(size)
            body = source.stream(download)
            drop = fault.drop_point(size)
            return DroppedBody(body, headers, 200, drop, media_type=CSV_MEDIA_TYPE)
        try:
            start, stop = resolve_range(spec, size)
        except UnsatisfiableRangeError:
            headers["Content-Range"] = f"bytes */{size}"
            return Response(status_code=416, headers=headers)
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
        headers["Content-Length"] = str(stop - start)
        drop = fault.drop_point(stop - start)
        body = source.stream(download, start, stop)
        return DroppedBody(body, headers, 206, drop, media_type=CSV_MEDIA_TYPE)

    routes = [
        _Route("/api/export", list_exports, "GET"),
        _Route("/api/export/{export_id}", get_export, "GET"),
        _Route("/api/export/{export_id}/{download_id}", get_download, "GET"),
        _Route("/api/export/{export_id}/{download_id}/data", get_data, "GET"),
        *(_Route(path, _doc_page(*page), "GET", "HEAD") for path, page in DOC_PAGES.items()),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(FaultMiddleware, injector=injector)],
        exception_handlers={HTTPException: _http_error, InvalidUuidError: _invalid_download_id},
        lifespan=lifespan,
    )
