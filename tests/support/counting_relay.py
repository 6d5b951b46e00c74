"""A TCP relay in front of a server on loopback, recording the request line of every HTTP request.

For tests that count the requests a server saw (the real server logs none) across a stop and a
restart of that server: the relay's address stays the same, so the tool's checkpoint identity
does too. While nothing listens behind it, the relay closes every connection it accepts, which
the tool sees as the server being down.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class CountingRelay:
    """Relays 127.0.0.1:<its port> to 127.0.0.1:`upstream_port`; `requests` grows as they pass."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.requests: list[str] = []  # "GET /api/export/small", in the order they arrived
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._open: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def seen_since(self, start: int) -> list[str]:
        """The requests relayed after the first `start` ones."""
        with self._lock:
            return self.requests[start:]

    def switch(self, upstream_port: int) -> None:
        """Relay to `upstream_port` from now on, ending every connection open (a keep-alive one
        would go on to the old server)."""
        self.upstream_port = upstream_port
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._listener.close()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        except OSError:
            client.close()
            return
        with self._lock:
            self._open |= {client, upstream}
        back = threading.Thread(target=self._pump, args=(upstream, client, None), daemon=True)
        back.start()
        self._pump(client, upstream, self._record)
        back.join()
        with self._lock:
            self._open -= {client, upstream}
        client.close()
        upstream.close()

    def _record(self, pending: bytes) -> bytes:
        """Log every complete request head in `pending`; return what is left (a partial head).

        The tool sends only GETs, without bodies, so the stream is request heads end to end.
        """
        while b"\r\n\r\n" in pending:
            head, pending = pending.split(b"\r\n\r\n", 1)
            method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            with self._lock:
                self.requests.append(f"{method} {target}")
        return pending

    @staticmethod
    def _pump(
        source: socket.socket, sink: socket.socket, record: Callable[[bytes], bytes] | None
    ) -> None:
        pending = b""
        try:
            while data := source.recv(256 * 1024):
                if record is not None:
                    pending = record(pending + data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):  # either side ending ends the connection
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


@contextmanager
def counting_relay(upstream_port: int) -> Iterator[CountingRelay]:
    relay = CountingRelay(upstream_port)
    try:
        yield relay
    finally:
        relay.close()
