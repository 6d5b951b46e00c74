"""A raw HTTP/1.1 exchange with the real server: the exact status line, headers and body bytes.

httpx normalises what it sends (the path's spelling, its own headers) and what it gets (header
case, decoded bodies); pinning the server's answers byte for byte needs neither. One request per
connection (`Connection: close`), a fixed `Host` (so a redirect's `Location` does not name the
port), and the body read to the end of the connection, de-chunked when it is chunked.
"""

from __future__ import annotations

import hashlib
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

HOST = "testserver"
# Set by uvicorn for every answer, and different every second: left out of what is compared.
VOLATILE_HEADERS = frozenset({"date"})
# Bodies up to this size are kept whole in a recording; longer ones by length and SHA-256.
WHOLE_BODY_LIMIT = 4096


@dataclass(frozen=True)
class Exchange:
    """One request as sent: method, request target (raw, as it goes on the wire), extra headers
    and a body (with its Content-Length)."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def to_bytes(self) -> bytes:
        lines = [f"{self.method} {self.target} HTTP/1.1", f"Host: {HOST}", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        if self.body:
            lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body

    def recorded(self) -> list[object]:
        request: list[object] = [self.method, self.target, [list(pair) for pair in self.headers]]
        return [*request, self.body.decode()] if self.body else request


@dataclass(frozen=True)
class Answer:
    status_line: str
    headers: tuple[tuple[str, str], ...]  # as received, in order, without VOLATILE_HEADERS
    body: bytes  # de-chunked; what arrived before the connection ended
    complete: bool  # False when a chunked body ended without its last chunk

    def recorded(self) -> dict[str, Any]:
        """JSON-ready: the body whole when it is short text, else its length and SHA-256."""
        body: Any
        if len(self.body) <= WHOLE_BODY_LIMIT and _is_text(self.body):
            body = self.body.decode()
        else:
            body = {"length": len(self.body), "sha256": hashlib.sha256(self.body).hexdigest()}
        return {
            "status_line": self.status_line,
            "headers": [list(pair) for pair in self.headers],
            "body": body,
            "complete": self.complete,
        }


def _is_text(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


def exchange(url: str, request: Exchange, timeout: float = 30.0) -> Answer:
    """Send `request` to the server at `url` on a connection of its own; its whole answer."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    received = bytearray()
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(request.to_bytes())
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:  # an aborted body
                break
            if not data:
                break
            received += data
    head, _, rest = bytes(received).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = tuple(
        (name, value.strip())
        for name, _, value in (line.partition(":") for line in header_lines)
        if name.lower() not in VOLATILE_HEADERS
    )
    chunked = any(n.lower() == "transfer-encoding" and v == "chunked" for n, v in headers)
    if request.method == "HEAD" or not chunked:
        return Answer(status_line, headers, rest, True)
    body, complete = _dechunk(rest)
    return Answer(status_line, headers, body, complete)


def _dechunk(data: bytes) -> tuple[bytes, bool]:
    body = bytearray()
    while True:
        size_line, found, data = data.partition(b"\r\n")
        if not found:
            return bytes(body), False
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return bytes(body), True
        body += data[:size]
        if len(data) < size + 2:
            return bytes(body), False
        data = data[size + 2 :]
