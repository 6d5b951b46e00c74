"""The messages between the tool and its local worker processes, over a Unix socket pair.

Every message, both ways, is a header (kind, payload length) followed by the payload:

tool to worker: TASK (pickled `(options, task)`)
worker to tool: PROGRESS (signed rows counted since the last report), OUTAGE (pickled
`(since, back)` of an OutageEvent: the server became unreachable, or answers again), RESULT
(pickled result), ERROR (pickled `(exception, traceback text)`)
"""

from __future__ import annotations

import pickle
import struct
import traceback
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import socket

HEADER = struct.Struct("<BQ")  # kind, payload length
ROWS = struct.Struct("<q")
TASK, PROGRESS, RESULT, ERROR, OUTAGE = range(1, 6)


def encode(kind: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


def receive(sock: socket.socket) -> tuple[int, bytes] | None:
    """The next message's kind and payload; None on EOF (the other end closed, or died)."""
    header = _receive_exactly(sock, HEADER.size)
    if header is None:
        return None
    kind, length = HEADER.unpack(header)
    payload = _receive_exactly(sock, length)
    return None if payload is None else (kind, payload)


def _receive_exactly(sock: socket.socket, size: int) -> bytes | None:
    data = bytearray()
    while len(data) < size:
        piece = sock.recv(size - len(data))
        if not piece:
            return None
        data += piece
    return bytes(data)


def error_payload(error: Exception) -> bytes:
    """The exception and its traceback, pickled; an exception that does not pickle is described."""
    trace = "".join(traceback.format_exception(error))
    try:
        return pickle.dumps((error, trace))
    except Exception:  # e.g. a bug's exception holding an unpicklable object
        return pickle.dumps((RuntimeError(f"{type(error).__name__}: {error}"), trace))
