"""The CSV export API's routes (docs/server.md): exports, downloads, their metadata and bodies,
and the API's own description pages, as `create_app` mounts them.

Every answer is byte for byte what the FastAPI app this replaced gave: its 405s, its 422 for a
download id that is not a UUID, its JSON shapes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ExceptionHandler, Receive, Scope, Send

from export_server.bodies import Bodies, etag_of
from export_server.dataset import EXPORTS, Download, downloads_of, find_download
from export_server.errors import InvalidUuidError
from export_server.faults import DroppedBody, fault_of
from export_server.ranges import UnsatisfiableRangeError, parse_range, resolve_range
from export_server.uuids import parse_uuid

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


class StrictRoute(Route):
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


# What the app must add to its exception handlers for these routes.
EXPORT_API_ERRORS: Mapping[type[Exception], ExceptionHandler] = {
    InvalidUuidError: _invalid_download_id
}


def _lookup(request: Request) -> Download:
    # The id is checked first: a malformed one is 422 whatever the export.
    download_id = parse_uuid(request.path_params["download_id"])
    export_id: str = request.path_params["export_id"]
    if export_id not in EXPORTS:
        raise HTTPException(404, "Export not found")
    download = find_download(export_id, download_id)
    if download is None:
        raise HTTPException(404, "Download not found")
    return download


async def _list_exports(request: Request) -> Response:
    return JSONResponse({"data": {"export_ids": list(EXPORTS)}})


async def _get_export(request: Request) -> Response:
    export_id: str = request.path_params["export_id"]
    if export_id not in EXPORTS:
        raise HTTPException(404, "Export not found")
    ids = [str(d.id) for d in downloads_of(export_id)]
    return JSONResponse({"data": {"id": export_id, "download_ids": ids}})


async def _get_download(request: Request) -> Response:
    return JSONResponse({"data": _lookup(request).metadata()})


def export_api_routes(bodies: Bodies, *, ranges: bool) -> list[BaseRoute]:
    """The API's routes, serving bodies from `bodies`; `ranges` False answers `/data` as the
    reference does: chunked, no Content-Length, ETag or Accept-Ranges, Range ignored."""

    async def get_data(request: Request) -> Response:
        download = _lookup(request)
        fault = fault_of(request)
        size = bodies.size(download)
        if not ranges:
            drop = fault.drop_point(size)
            return DroppedBody(
                bodies.stream_to_send(download), {}, 200, drop, media_type=CSV_MEDIA_TYPE
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
            body = bodies.stream_to_send(download)
            drop = fault.drop_point(size)
            return DroppedBody(body, headers, 200, drop, media_type=CSV_MEDIA_TYPE)
        try:
            start, stop = resolve_range(spec, size)
        except UnsatisfiableRangeError:
            headers["Content-Range"] = f"bytes */{size}"
            return Response(status_code=416, headers=headers)
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
        headers["Content-Length"] = str(stop - start)
        body = bodies.stream_to_send(download, start, stop)
        drop = fault.drop_point(stop - start)
        return DroppedBody(body, headers, 206, drop, media_type=CSV_MEDIA_TYPE)

    return [
        StrictRoute("/api/export", _list_exports, "GET"),
        StrictRoute("/api/export/{export_id}", _get_export, "GET"),
        StrictRoute("/api/export/{export_id}/{download_id}", _get_download, "GET"),
        StrictRoute("/api/export/{export_id}/{download_id}/data", get_data, "GET"),
    ]


def _doc_page(name: str, media_type: str) -> Callable[[Request], Awaitable[Response]]:
    async def serve(request: Request) -> Response:
        return Response((API_DOCS / name).read_bytes(), media_type=media_type)

    return serve


def api_doc_routes() -> list[BaseRoute]:
    """The API's description (/openapi.json) and its two browsers (/docs, /redoc)."""
    return [StrictRoute(path, _doc_page(*page), "GET", "HEAD") for path, page in DOC_PAGES.items()]
