"""The messages between the front process and its generator processes, as both sides write them.

Every message, both ways, is a header (job id, operation, payload length) followed by the payload:

- front to generator: START (JSON: export, download, and `start`, `stop`, `credit` for a stream
  or `path` for a fill), CREDIT (u32: chunks the stream may run further ahead), CANCEL;
- generator to front: DATA (a chunk of a stream's bytes), PROGRESS (u64: bytes of a fill written
  so far), END, FAIL (reason), FULL (reason: the disk is full).

The operations are plain ints, not an enum: the front compares one per chunk it receives.
"""

from __future__ import annotations

import json
import struct
import uuid

HEADER = struct.Struct("<IBI")  # job id, operation, payload length
COUNT = struct.Struct("<I")
OFFSET = struct.Struct("<Q")
START, CREDIT, CANCEL, DATA, PROGRESS, END, FAIL, FULL = range(1, 9)


def encode(job_id: int, operation: int, payload: bytes = b"") -> bytes:
    """One message: header and payload."""
    return HEADER.pack(job_id, operation, len(payload)) + payload


def start_message(job_id: int, export_id: str, download_id: uuid.UUID, **job: object) -> bytes:
    """A START message. `job`: `start`, `stop` (None: to the end) and `credit` for a stream;
    `path` (the file to write the whole body into) for a fill."""
    spec = {"export": export_id, "download": str(download_id), **job}
    return encode(job_id, START, json.dumps(spec).encode())
