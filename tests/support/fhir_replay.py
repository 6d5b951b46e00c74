"""A small FHIR Bulk Data server that replays a recorded export (the Synthea sample) over HTTP.

Kick-off (`GET /fhir/Patient/$export` or `/fhir/Group/ID/$export`) answers 202 and a status URL;
the status URL answers 202 (with `Retry-After` and `X-Progress`) `polls` times, then 200 and the
recorded manifest with its file URLs moved to this server; each file is served from the sample;
DELETE on the status URL ends the job (the status URL then answers 404). Every request's method
and path is kept in `seen`.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

SAMPLE = Path(__file__).parent.parent / "data" / "fhir" / "synthea-100"
KICK_OFF = re.compile(r"/fhir/(Patient|Group/[^/]+)/\$export")
STATUS_PATH = "/fhir/jobs/1"
FILES = "/fhir/bulkfiles/"


@dataclass
class Replay:
    """What the server replays, and what it saw."""

    manifest: dict[str, Any]
    files: dict[str, bytes]  # name under /fhir/bulkfiles/ -> body
    polls: int = 2  # answers of 202 before the manifest
    retry_after: str = "0"
    seen: list[tuple[str, str]] = field(default_factory=list)  # (method, path with query)
    deleted: bool = False
    failing: set[str] = field(default_factory=set)  # files that answer 500 while named here
    file_type: str = "application/fhir+ndjson"  # the Content-Type files are served with

    def add_deleted_file(self, name: str, body: bytes) -> None:
        """Serve `body` as one more `deleted` file of the manifest."""
        self.files[name] = body
        self.manifest.setdefault("deleted", []).append({"type": "Bundle", "url": f"{FILES}{name}"})

    def add_error_file(self, name: str, body: bytes) -> None:
        """Serve `body` as one more `error` file of the manifest."""
        self.files[name] = body
        self.manifest["error"].append({"type": "OperationOutcome", "url": f"{FILES}{name}"})


def load_sample() -> Replay:
    """The Synthea sample as a replay: its manifest (URLs made paths on this server), its files."""
    manifest = json.loads((SAMPLE / "manifest.json").read_text())
    files = {}
    for entry in manifest["output"]:
        name = entry["url"].rsplit("/", 1)[1]
        files[name] = (SAMPLE / name).read_bytes()
        entry["url"] = FILES + name
    return Replay(manifest, files)


def _moved(manifest: dict[str, Any], base: str) -> dict[str, Any]:
    """The manifest with every file path made an absolute URL on this server."""
    moved: dict[str, Any] = json.loads(json.dumps(manifest))
    for name in ("output", "error", "deleted"):
        for entry in moved.get(name, []):
            entry["url"] = base + entry["url"]
    return moved


@contextmanager
def fhir_replay(replay: Replay) -> Iterator[str]:
    """Serve `replay` on a free loopback port; yields the FHIR base URL (`http://HOST:PORT/fhir`)."""
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def answer(self, status: int, body: bytes = b"", **headers: str) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def gone(self) -> None:
            outcome = {"resourceType": "OperationOutcome",
                       "issue": [{"severity": "error", "code": "not-found",
                                  "diagnostics": "no such export job"}]}  # fmt: skip
            self.answer(404, json.dumps(outcome).encode(), Content_Type="application/fhir+json")

        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            base = f"http://{self.headers['Host']}"
            with lock:
                replay.seen.append(("GET", self.path))
                if KICK_OFF.fullmatch(path):
                    replay.deleted = False  # a new job, at the one status URL this server has
                    self.answer(202, Content_Location=base + STATUS_PATH)
                elif path == STATUS_PATH and replay.deleted:
                    self.gone()
                elif path == STATUS_PATH and replay.polls > 0:
                    replay.polls -= 1
                    self.answer(202, Retry_After=replay.retry_after, X_Progress="in progress")
                elif path == STATUS_PATH:
                    body = json.dumps(_moved(replay.manifest, base)).encode()
                    self.answer(200, body, Content_Type="application/json")
                elif path.startswith(FILES) and path[len(FILES) :] in replay.failing:
                    self.answer(500, b"failing on purpose", Content_Type="text/plain")
                elif path.startswith(FILES) and path[len(FILES) :] in replay.files:
                    body = replay.files[path[len(FILES) :]]
                    self.answer(200, body, Content_Type=replay.file_type)
                else:
                    self.gone()

        def do_DELETE(self) -> None:
            with lock:
                replay.seen.append(("DELETE", self.path))
                if self.path == STATUS_PATH and not replay.deleted:
                    replay.deleted = True
                    self.answer(202)
                else:
                    self.gone()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/fhir"
    finally:
        server.shutdown()
        server.server_close()
