"""A generator process: produces the bodies the front process asks for, on a core of its own.

Run as `python -m export_server.worker FD PARENT_PID`, where FD is this process's end of a Unix
socket pair whose other end the front process holds. Every message, both ways, is a header
(job id, operation, payload length) followed by the payload:

- front to worker: START (JSON: export, download, start, stop, credit), CREDIT (u32), CANCEL;
- worker to front: DATA (bytes of the body, in order), END, FAIL (a one-line reason).

Flow control: a job produces a chunk only while it holds credit, and the front grants one credit
per chunk it has consumed, so a slow consumer holds generation back instead of filling memory.
Jobs take turns a chunk at a time, so every download in progress moves, however many there are.

The process exits with the front: on EOF of the socket (the front closed it or died), on a broken
pipe, on Linux's parent-death signal, and when `os.getppid()` changes.
"""

from __future__ import annotations

import json
import select
import signal
import socket
import struct
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from export_server.dataset import EXPORTS, find_download
from export_server.generate import generate_range
from export_server.lifeline import POLL_SECONDS, die_with_parent, parent_is_alive

HEADER = struct.Struct("<IBI")  # job id, operation, payload length
COUNT = struct.Struct("<I")
START, CREDIT, CANCEL, DATA, END, FAIL = range(1, 7)


def encode(job_id: int, operation: int, payload: bytes = b"") -> bytes:
    """One message: header and payload."""
    return HEADER.pack(job_id, operation, len(payload)) + payload


def start_message(
    job_id: int, export_id: str, download_id: uuid.UUID, start: int, stop: int | None, credit: int
) -> bytes:
    """The START message for bytes [start, stop) of a download (stop None: to the end)."""
    spec = {"export": export_id, "download": str(download_id), "start": start, "stop": stop}
    return encode(job_id, START, json.dumps({**spec, "credit": credit}).encode())


@dataclass
class _Job:
    chunks: Iterator[bytes]
    credit: int


class _Worker:
    def __init__(self, sock: socket.socket, parent_pid: int) -> None:
        self.sock = sock
        self.parent_pid = parent_pid
        self.jobs: dict[int, _Job] = {}
        self.inbox = bytearray()

    def run(self) -> None:
        while parent_is_alive(self.parent_pid):
            runnable = [job_id for job_id, job in self.jobs.items() if job.credit > 0]
            # Busy: only peek at the socket between chunks. Idle: sleep until a message comes.
            timeout = 0 if runnable else POLL_SECONDS
            if select.select([self.sock], [], [], timeout)[0]:
                data = self.sock.recv(1 << 16)
                if not data:
                    return
                self.inbox += data
                self._handle_messages()
            for job_id in runnable:
                self._advance(job_id)

    def _handle_messages(self) -> None:
        while len(self.inbox) >= HEADER.size:
            job_id, operation, length = HEADER.unpack_from(self.inbox)
            end = HEADER.size + length
            if len(self.inbox) < end:
                return
            payload = bytes(self.inbox[HEADER.size : end])
            del self.inbox[:end]
            if operation == START:
                self._start(job_id, payload)
            elif operation == CREDIT and job_id in self.jobs:
                self.jobs[job_id].credit += COUNT.unpack(payload)[0]
            elif operation == CANCEL:
                self.jobs.pop(job_id, None)

    def _start(self, job_id: int, payload: bytes) -> None:
        spec = json.loads(payload)
        download = None
        if spec["export"] in EXPORTS:
            download = find_download(spec["export"], uuid.UUID(spec["download"]))
        if download is None:
            self._send(job_id, FAIL, f"no download {spec['export']}/{spec['download']}".encode())
            return
        chunks = generate_range(download, spec["start"], spec["stop"])
        self.jobs[job_id] = _Job(chunks, spec["credit"])

    def _advance(self, job_id: int) -> None:
        """Produce and send the job's next chunk, or its end."""
        job = self.jobs.get(job_id)
        if job is None or job.credit <= 0:
            return  # cancelled, or out of credit since the round began
        try:
            chunk = next(job.chunks, None)
        except Exception as exc:  # a bug in generation must fail one job, not the process
            del self.jobs[job_id]
            self._send(job_id, FAIL, f"generation failed: {exc!r}".encode())
            return
        if chunk is None:
            del self.jobs[job_id]
            self._send(job_id, END)
            return
        job.credit -= 1
        self._send(job_id, DATA, chunk)

    def _send(self, job_id: int, operation: int, payload: bytes = b"") -> None:
        # Two writes instead of concatenating: a chunk is hundreds of kilobytes.
        self.sock.sendall(HEADER.pack(job_id, operation, len(payload)))
        if payload:
            self.sock.sendall(payload)


def main(argv: list[str]) -> int:
    fd, parent_pid = int(argv[0]), int(argv[1])
    die_with_parent(parent_pid)
    # Ctrl+C reaches the whole process group; the front handles it and then closes our socket.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock = socket.socket(fileno=fd)
    try:
        _Worker(sock, parent_pid).run()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the front is gone: so are we
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
