"""The HTTP API of docs/server.md, built by `create_app`; importing this module starts nothing."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from export_server.bodies import Bodies, etag_of
from export_server.dataset import EXPORTS, Download, downloads_of, find_download
from export_server.errors import GenerationError
from export_server.faults import NO_FAULT, RETRY_AFTER_STATUSES, Fault, FaultConfig, FaultInjector
from export_server.pool import GeneratorPool
from export_server.ranges import UnsatisfiableRangeError, parse_range, resolve_range

log = logging.getLogger("export_server")

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"


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
    included: StreamingResponse cancels the stream then), so that their generation stops.
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


def create_app(config: ServerConfig | None = None, bodies: Bodies | None = None) -> FastAPI:
    """The export server's ASGI app.

    `bodies` serves the CSV bodies (default: one generator process, no cache). The app's lifespan
    starts and stops it, so run the app with lifespan events (uvicorn does).
    """
    config = config or ServerConfig()
    source = bodies or Bodies(GeneratorPool(1))
    injector = FaultInjector(config.faults)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await source.start()
        try:
            yield
        finally:
            await source.close()

    app = FastAPI(title="Mock export server", version="1", lifespan=lifespan)

    app.add_middleware(FaultMiddleware, injector=injector)

    def lookup(export_id: str, download_id: uuid.UUID) -> Download:
        if export_id not in EXPORTS:
            raise HTTPException(404, "Export not found")
        download = find_download(export_id, download_id)
        if download is None:
            raise HTTPException(404, "Download not found")
        return download

    @app.get("/api/export")
    async def list_exports() -> dict[str, object]:
        return {"data": {"export_ids": list(EXPORTS)}}

    @app.get("/api/export/{export_id}")
    async def get_export(export_id: str) -> dict[str, object]:
        if export_id not in EXPORTS:
            raise HTTPException(404, "Export not found")
        ids = [str(d.id) for d in downloads_of(export_id)]
        return {"data": {"id": export_id, "download_ids": ids}}

    @app.get("/api/export/{export_id}/{download_id}")
    async def get_download(export_id: str, download_id: uuid.UUID) -> dict[str, object]:
        return {"data": lookup(export_id, download_id).metadata()}

    @app.get("/api/export/{export_id}/{download_id}/data")
    async def get_data(export_id: str, download_id: uuid.UUID, request: Request) -> Response:
        download = lookup(export_id, download_id)
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

    return app


def _drop_point(fault: Fault, length: int) -> int | None:
    """How many bytes of a `length`-byte body to send before cutting it off, if at all."""
    if fault.drop_fraction is None or length <= 1:
        return None
    return 1 + int(fault.drop_fraction * (length - 1))
