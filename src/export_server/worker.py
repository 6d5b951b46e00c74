"""A generator process: produces the bodies the front process asks for, on a core of its own.

Run as `python -m export_server.worker FD PARENT_PID`, where FD is this process's end of a Unix
socket pair whose other end the front process holds; the messages over it are those of
`generator_protocol.py`.

A job is one of two kinds:
- a *fill* writes the whole body into a cache file the front has created, and reports its
  progress (bytes written so far, synced to disk before the end): the bytes never cross the
  socket, so a cold download costs the front what a warm one does;
- a *stream* sends bytes [start, stop) of the body over the socket, for requests the cache cannot
  serve (no cache, or the disk is full). A stream produces a chunk only while it holds credit; the
  front grants one per chunk consumed, so a slow client holds generation back.

Jobs take turns a chunk at a time, so every download in progress moves, however many there are.
The process exits with the front: on EOF of the socket (the front closed it or died), on a broken
pipe, on Linux's parent-death signal, and when `os.getppid()` changes.
"""

from __future__ import annotations

import errno
import json
import os
import select
import signal
import socket
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from export_server.dataset import EXPORTS, find_download
from export_server.exitcodes import ExitCode
from export_server.generate import generate_range
from export_server.generator_protocol import (
    CANCEL,
    COUNT,
    CREDIT,
    DATA,
    END,
    FAIL,
    FULL,
    HEADER,
    OFFSET,
    PROGRESS,
    START,
)
from export_server.lifeline import POLL_SECONDS, die_with_parent, parent_is_alive

# Out-of-space errors: the front stops caching instead of failing the request.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


@dataclass
class _Job:
    chunks: Iterator[bytes]
    credit: int | None  # None: unlimited (a fill)
    file: int | None = None  # a fill's file descriptor
    written: int = 0

    @property
    def runnable(self) -> bool:
        return self.credit is None or self.credit > 0

    def close(self) -> None:
        if self.file is not None:
            os.close(self.file)
            self.file = None


class _Worker:
    def __init__(self, sock: socket.socket, parent_pid: int) -> None:
        self.sock = sock
        self.parent_pid = parent_pid
        self.jobs: dict[int, _Job] = {}
        self.inbox = bytearray()

    def run(self) -> None:
        while parent_is_alive(self.parent_pid):
            runnable = [job_id for job_id, job in self.jobs.items() if job.runnable]
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
            job = self.jobs.get(job_id)
            if operation == START:
                self._start(job_id, json.loads(payload))
            elif operation == CREDIT and job is not None and job.credit is not None:
                job.credit += COUNT.unpack(payload)[0]
            elif operation == CANCEL and job is not None:
                del self.jobs[job_id]
                job.close()

    def _start(self, job_id: int, spec: dict[str, object]) -> None:
        export_id, download_id = str(spec["export"]), str(spec["download"])
        download = None
        if export_id in EXPORTS:
            download = find_download(export_id, uuid.UUID(download_id))
        if download is None:
            self._send(job_id, FAIL, f"no download {export_id}/{download_id}".encode())
            return
        path = spec.get("path")
        if isinstance(path, str):
            try:
                file = os.open(path, os.O_WRONLY)
            except OSError as exc:
                self._send(job_id, FAIL, f"cannot open {path}: {exc.strerror}".encode())
                return
            self.jobs[job_id] = _Job(generate_range(download), None, file)
        else:
            start, stop, credit = spec["start"], spec["stop"], spec["credit"]
            assert isinstance(start, int) and isinstance(credit, int)
            assert stop is None or isinstance(stop, int)
            self.jobs[job_id] = _Job(generate_range(download, start, stop), credit)

    def _advance(self, job_id: int) -> None:
        """Produce the job's next chunk (send it, or write it), or finish the job."""
        job = self.jobs.get(job_id)
        if job is None or not job.runnable:
            return  # cancelled, or out of credit since the round began
        try:
            chunk = next(job.chunks, None)
            if job.file is not None:
                if chunk is None:
                    os.fsync(job.file)
                else:
                    _write_all(job.file, chunk)
                    job.written += len(chunk)
        except OSError as exc:
            self._finish(job_id, FULL if exc.errno in DISK_FULL else FAIL, exc.strerror or "")
            return
        except Exception as exc:  # a bug in generation must fail one job, not the process
            self._finish(job_id, FAIL, f"generation failed: {exc!r}")
            return
        if chunk is None:
            self._finish(job_id, END)
        elif job.file is not None:
            self._send(job_id, PROGRESS, OFFSET.pack(job.written))
        else:
            assert job.credit is not None
            job.credit -= 1
            self._send(job_id, DATA, chunk)

    def _finish(self, job_id: int, operation: int, reason: str = "") -> None:
        self.jobs.pop(job_id).close()
        self._send(job_id, operation, reason.encode())

    def _send(self, job_id: int, operation: int, payload: bytes = b"") -> None:
        # Two writes instead of concatenating: a chunk is hundreds of kilobytes.
        self.sock.sendall(HEADER.pack(job_id, operation, len(payload)))
        if payload:
            self.sock.sendall(payload)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


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
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
