"""The HTTP API of docs/server.md, built by `create_app`; importing this module starts nothing."""

from __future__ import annotations

import asyncio
import logging
from asyncio import FIRST_COMPLETED
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from export_server.bodies import Bodies, etag_of
from export_server.dataset import EXPORTS, Download, downloads_of, find_download
from export_server.errors import GenerationError, InvalidUuidError
from export_server.faults import NO_FAULT, RETRY_AFTER_STATUSES, Fault, FaultConfig, FaultInjector
from export_server.pool import GeneratorPool
from export_server.ranges import UnsatisfiableRangeError, parse_range, resolve_range
from export_server.uuids import parse_uuid

if TYPE_CHECKING:
    from export_server.smart_auth import SmartAuthority

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


class DroppedBody(StreamingResponse):
    """Streams a body and, when a fault says so, aborts the connection partway.

    Returning without the final body message makes the server close the connection, so the client
    sees an incomplete body, never a clean end. A body that cannot be generated ends the same way.
    The chunks are closed as soon as the response ends, however it ends (a client that hangs up
    included: the stream is cancelled then), so that their generation stops.
    """

    def __init__(
        self, chunks: AsyncGenerator[bytes, None], headers: dict[str, str], status_code: int,
        drop_after: int | None,
    ) -> None:  # fmt: skip
        super().__init__(
            chunks, status_code=status_code, headers=headers, media_type=CSV_MEDIA_TYPE
        )
        self.chunks = chunks
        self.drop_after = drop_after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Stream the body while watching for the client to hang up, which cancels the stream.

        What StreamingResponse does, with asyncio tasks instead of an anyio task group: the first
        use of one imports anyio's asyncio backend, 70 ms of compiling that the bundled server's
        first body waited for.
        """
        streaming = asyncio.create_task(self.stream_response(send))
        hanging_up = asyncio.create_task(self.listen_for_disconnect(receive))
        try:
            done, _ = await asyncio.wait((streaming, hanging_up), return_when=FIRST_COMPLETED)
        finally:
            streaming.cancel()
            hanging_up.cancel()
            await asyncio.gather(streaming, hanging_up, return_exceptions=True)
        for task in done:
            error = None if task.cancelled() else task.exception()
            if error is not None:
                raise error

    async def stream_response(self, send: Send) -> None:
        try:
            await self._send_body(send)
        except GenerationError as exc:
            log.warning("body cut off: %s", exc)
        finally:
            # Synchronous clean-up only, so it completes even inside a cancelled task.
            await self.chunks.aclose()

    async def _send_body(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        sent = 0
        async for chunk in self.chunks:
            if self.drop_after is not None and sent + len(chunk) >= self.drop_after:
                await send(
                    {
                        "type": "http.response.body",
                        "body": chunk[: self.drop_after - sent],
                        "more_body": True,
                    }
                )
                log.info("fault injection: dropped a body after %d bytes", self.drop_after)
                return
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            sent += len(chunk)
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class FaultMiddleware:
    """Pure ASGI middleware (not BaseHTTPMiddleware, which would finish a body we mean to cut)."""

    def __init__(self, app: ASGIApp, injector: FaultInjector) -> None:
        self.app = app
        self.injector = injector

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        range_header = Headers(scope=scope).get("range")
        path: str = scope["path"]
        fault = self.injector.decide(
            scope["method"], path, range_header, body=path.endswith("/data")
        )
        if fault.status is not None:
            retry_after = str(self.injector.config.retry_after)
            headers = {"Retry-After": retry_after} if fault.status in RETRY_AFTER_STATUSES else {}
            response = JSONResponse({"detail": "injected fault"}, fault.status, headers=headers)
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["fault"] = fault
        await self.app(scope, receive, send)


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


def create_app(
    config: ServerConfig | None = None,
    bodies: Bodies | None = None,
    smart: SmartAuthority | None = None,
) -> Starlette:
    """The export server's ASGI app.

    `bodies` serves the CSV bodies (default: one generator process, no cache). The app's lifespan
    starts and stops it, so run the app with lifespan events (uvicorn does). With `smart`, the
    app serves SMART Backend Services discovery and tokens (`smart.routes()`), and the FHIR
    routes require a token (`smart.authorize`).
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
        fault: Fault = getattr(request.state, "fault", NO_FAULT)
        size = source.size(download)
        if not config.ranges:
            return DroppedBody(source.stream(download), {}, 200, _drop_point(fault, size))

        etag = etag_of(download)
        # The size is known before a byte is generated, like the ETag: every answer can carry it.
        headers = {"Accept-Ranges": "bytes", "ETag": etag}
        spec = parse_range(request.headers.get("range"))
        if_range = request.headers.get("if-range")
        if spec is not None and if_range is not None and if_range != etag:
            spec = None  # the client's copy is stale: send the whole new body
        if spec is None:
            headers["Content-Length"] = str(size)
            return DroppedBody(source.stream(download), headers, 200, _drop_point(fault, size))
        try:
            start, stop = resolve_range(spec, size)
        except UnsatisfiableRangeError:
            headers["Content-Range"] = f"bytes */{size}"
            return Response(status_code=416, headers=headers)
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
        headers["Content-Length"] = str(stop - start)
        drop = _drop_point(fault, stop - start)
        return DroppedBody(source.stream(download, start, stop), headers, 206, drop)

    routes: list[BaseRoute] = [
        *(smart.routes() if smart is not None else ()),
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


def _drop_point(fault: Fault, length: int) -> int | None:
    """How many bytes of a `length`-byte body to send before cutting it off, if at all."""
    if fault.drop_fraction is None or length <= 1:
        return None
    return 1 + int(fault.drop_fraction * (length - 1))
