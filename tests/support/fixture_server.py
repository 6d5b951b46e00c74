"""A tiny stdlib HTTP server that answers what a test tells it to: for what the real server cannot do.

Routes map a path to a fixed answer (status, content type, body). A body may also be cut short:
`declared_length` larger than the body makes the client see a truncated response, and `cuts`
breaks successive answers off after chosen numbers of bytes.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SHUTDOWN_POLL = 0.02  # seconds


@dataclass
class Answer:
    body: bytes
    status: int = 200
    content_type: str = "application/json"
    declared_length: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    require: tuple[str, str] | None = None  # answer 401 unless this header has this value
    ranges: bool = False  # serve `Range: bytes=N-` with 206, an ETag and Accept-Ranges
    gone_from: int | None = None  # with ranges: 404 to a Range that starts at this byte or later
    stalls: int = 0  # this many times, send half the body, then go silent for `stall_seconds`
    stall_seconds: float = 5.0
    unavailable: int = 0  # answer 503 this many times first (a gateway whose server is down)
    # Successive answers break the connection after this many bytes of their body (one each).
    cuts: list[int] = field(default_factory=list)
    redirect_parts: bool = False  # redirect a Range request not from byte 0 to itself, forever


def json_answer(data: Any, status: int = 200) -> Answer:
    return Answer(json.dumps(data).encode(), status)


def csv_answer(text: str | bytes, **kwargs: Any) -> Answer:
    body = text.encode() if isinstance(text, str) else text
    return Answer(body, content_type="text/csv; charset=utf-8", **kwargs)


def export_routes(
    export_id: str, bodies: Mapping[str, bytes | str], rows: Mapping[str, int] | None = None
) -> dict[str, Answer]:
    """Routes for a well-formed export whose downloads have these bodies (rows counted from them)."""
    routes = {
        "/api/export": json_answer({"data": {"export_ids": [export_id]}}),
        f"/api/export/{export_id}": json_answer(
            {"data": {"id": export_id, "download_ids": list(bodies)}}
        ),
    }
    for download_id, body in bodies.items():
        raw = body.encode() if isinstance(body, str) else body
        declared = (rows or {}).get(download_id, max(0, raw.count(b"\n") - 1))
        routes[f"/api/export/{export_id}/{download_id}"] = json_answer(
            {"data": {"id": download_id, "rows": declared, "event_types": [], "patients": [],
                      "start_time": "2025-08-26T00:00:00", "end_time": "2025-08-26T00:00:00"}}
        )  # fmt: skip
        routes[f"/api/export/{export_id}/{download_id}/data"] = csv_answer(raw)
    return routes


@contextmanager
def fixture_server(
    routes: dict[str, Answer], seen: list[tuple[str, dict[str, str]]] | None = None
) -> Iterator[str]:
    """Serve `routes` on a free loopback port; yields the base URL. Unknown paths answer 404.

    Each request's path and headers are appended to `seen`, when given.
    """

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if seen is not None:
                seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            # A proxy request names the whole URL (absolute form): answer it as its path.
            path = re.sub(r"^https?://[^/]+", "", self.path).split("?")[0]
            answer = routes.get(path)
            if answer is None:
                answer = json_answer({"detail": "Not Found"}, 404)
            elif answer.require and self.headers.get(answer.require[0]) != answer.require[1]:
                answer = json_answer({"detail": "Not authenticated"}, 401)
            body = answer.body
            status = answer.status
            if answer.unavailable > 0:
                answer.unavailable -= 1
                answer = json_answer({"detail": "Service Unavailable"}, 503)
                body, status = answer.body, answer.status
            wanted = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
            if answer.redirect_parts and wanted and int(wanted[1]) > 0:
                answer = Answer(b"", status=302, headers={"Location": self.path})
                body, status = answer.body, answer.status
            if answer.ranges and wanted:
                if answer.gone_from is not None and int(wanted[1]) >= answer.gone_from:
                    answer = json_answer({"detail": "Not Found"}, 404)
                    body, status = answer.body, 404
                elif int(wanted[1]) < len(body):
                    last = int(wanted[2]) if wanted[2] else len(body) - 1
                    status, body = 206, body[int(wanted[1]) : last + 1]
            self.send_response(status)
            self.send_header("Content-Type", answer.content_type)
            if answer.ranges:
                total = len(answer.body)
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("ETag", '"fixture"')
                if status == 206 and wanted:
                    first = int(wanted[1])
                    self.send_header(
                        "Content-Range", f"bytes {first}-{first + len(body) - 1}/{total}"
                    )
            length = answer.declared_length if answer.declared_length is not None else len(body)
            self.send_header("Content-Length", str(length))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            if answer.declared_length is not None:
                self.send_header("Connection", "close")
            self.end_headers()
            cut = answer.cuts.pop(0) if answer.cuts else len(body)
            if cut < len(body):
                self.wfile.write(body[:cut])
                self.close_connection = True
                return
            if answer.stalls > 0:
                answer.stalls -= 1
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                time.sleep(answer.stall_seconds)
                self.close_connection = True
                return
            self.wfile.write(body)
            if answer.declared_length is not None:
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # shutdown() waits for the serving loop to look at its flag: every 20 ms, not the default 0.5 s.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
