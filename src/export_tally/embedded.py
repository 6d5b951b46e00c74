"""The bundled mock server, started as a subprocess when nothing answers on the default address.

The tool never imports the server: it runs `python -m export_server`, exactly as a user would, on a
free port. The server is told to exit with its parent, so it cannot outlive a run, even one killed
with `kill -9`.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit

from export_tally.core.errors import ServerUnreachableError

PROBE_TIMEOUT = 0.3
START_TIMEOUT = 60.0
_LISTENING = re.compile(r"listening on (http://\S+)")


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
    """A running bundled server; `stop()` ends it (idempotent)."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "export_server", "--port", "0", "--exit-with-parent"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.log: list[str] = []
        self.url = self._wait_for_url()
        # Keep draining its stderr so the server never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()

    def _wait_for_url(self) -> str:
        assert self.process.stderr is not None
        found: list[str] = []
        done = threading.Event()

        def read() -> None:
            assert self.process.stderr is not None
            for line in self.process.stderr:
                self.log.append(line.rstrip())
                match = _LISTENING.search(line)
                if match:
                    found.append(match.group(1))
                    break
            done.set()

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT
        while not done.wait(0.1):
            if time.monotonic() > deadline:
                self.stop()
                raise ServerUnreachableError("the bundled server did not start within a minute")
        if not found:
            self.stop()
            last = self.log[-1] if self.log else "no output"
            raise ServerUnreachableError(f"the bundled server failed to start: {last}")
        return found[0]

    def _drain(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line.rstrip())
            del self.log[:-50]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
