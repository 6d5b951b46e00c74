"""The bundled mock server, started as a subprocess when nothing answers on the default address.

The tool never imports the server: it runs `python -m export_server`, exactly as a user would, on a
free port. The server is told to exit with its parent, so it cannot outlive a run, even one killed
with `kill -9`; on every other exit `stop()` ends it and reaps it (the server reaps its own
generator processes before it exits).

Starting is split in two, so that the tool can do its own start-up while the server does: the
constructor starts the process and returns at once; `wait_for_url()` waits until it listens
(it prints `listening on URL` once it accepts connections) and for nothing more.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
from urllib.parse import urlsplit

from export_tally.errors import ServerUnreachableError

PROBE_TIMEOUT = 0.3
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
KEPT_LINES = 50
_LISTENING = re.compile(r"listening on (http://\S+)")
_HINT = "; start the server with `uv run server`, or pass --server"  # as when none answers


def is_listening(url: str, timeout: float = PROBE_TIMEOUT) -> bool:
    """One quick TCP probe of the server's address: does anything accept connections there?"""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


class EmbeddedServer:
    """A bundled server being started, then running; `stop()` ends it (idempotent)."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "export_server", "--port", "0", "--exit-with-parent"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.log: list[str] = []  # its last KEPT_LINES lines of stderr
        self._url: str | None = None
        self._answered = threading.Event()  # it listens, or it exited
        # Keeps draining its stderr, so the server never blocks on a full pipe.
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line.rstrip())
            del self.log[:-KEPT_LINES]
            if self._url is None:
                match = _LISTENING.search(line)
                if match:
                    self._url = match.group(1)
                    self._answered.set()
        self._answered.set()

    def wait_for_url(self) -> str:
        """Its URL, once it accepts connections; ServerUnreachableError if it fails to start."""
        if not self._answered.wait(START_TIMEOUT):
            self.stop()
            raise ServerUnreachableError(f"the bundled server did not start within a minute{_HINT}")
        if self._url is None:
            self.stop()
            last = self.log[-1] if self.log else "no output"
            raise ServerUnreachableError(f"the bundled server failed to start: {last}{_HINT}")
        return self._url

    def stop(self) -> None:
        """End the server and reap it (it stops and reaps its generator processes first)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(STOP_TIMEOUT)
