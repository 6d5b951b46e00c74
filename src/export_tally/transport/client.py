"""The HTTP client: how it is configured, and one request with retries.

`ClientOptions` is small and picklable: worker processes (or Dask workers) build their own client
from it, since an open connection pool cannot travel between processes. It carries the user's
headers (credentials among them), so its repr never shows them, and neither does any message.

Redirects are followed only within the server's origin (scheme, host and port) unless the user
allows any host; even then, the user's headers are never sent to another origin. Proxies come
from the standard environment variables, except for a loopback server, which is always direct.
"""

from __future__ import annotations

import ipaddress
import ssl
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import httpx

from export_tally import __version__
from export_tally.core.errors import ProtocolError, RedirectRefusedError, ServerUnreachableError
from export_tally.transport.retry import (
    RetryBudget,
    RetryPolicy,
    describe,
    is_retryable_status,
    retry_after_seconds,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

# Discovery answers are small; a bigger one is not the API, and must not fill memory.
MAX_METADATA_BYTES = 16 * 1024 * 1024
# At start-up, connection refused is tried this many times, this far apart (about two seconds).
QUICK_CONNECT_DELAYS = (0.5, 1.0)


MAX_REDIRECTS = 5


@dataclass(frozen=True)
class ClientOptions:
    """Where the server is and how to talk to it; `timeout` applies to connect and each read.

    `verify` is True (the system's CAs), False (--insecure) or the path of a CA bundle.
    """

    base_url: str
    timeout: float = 30.0
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    verify: bool | str = True
    redirects_anywhere: bool = False

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    @property
    def shown_url(self) -> str:
        """The server's URL as messages show it: without any user:password part."""
        return shown(self.base_url)


def shown(url: str) -> str:
    """A URL safe to print: user information removed."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _origin(url: httpx.URL | str) -> tuple[str, str, int | None]:
    url = httpx.URL(url)
    default = {"http": 80, "https": 443}.get(url.scheme)
    return (url.scheme, url.host, url.port or default)


def is_loopback(host: str | None) -> bool:
    """Whether a URL's host is this machine (such a server is never reached through a proxy)."""
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _ssl_context(verify: bool | str) -> ssl.SSLContext | bool:
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    return verify


_clients: dict[ClientOptions, httpx.Client] = {}
_clients_lock = threading.Lock()  # Dask runs tasks in threads: build each client once


def client_for(options: ClientOptions) -> httpx.Client:
    """This process's client for `options`, made once and reused, so connections are kept."""
    with _clients_lock:
        client = _clients.get(options)
        if client is None:
            client = _clients[options] = make_client(options)
        return client


def make_client(options: ClientOptions) -> httpx.Client:
    """A client for one process. `identity` encoding keeps byte offsets valid for Range resumes."""
    home = _origin(options.base_url)
    secret_names = {name.lower() for name, _ in options.headers}

    def guard_redirect(request: httpx.Request) -> None:
        if _origin(request.url) == home:
            return
        if not options.redirects_anywhere:
            raise RedirectRefusedError(
                f"{options.shown_url} redirected to another host ({request.url.host}); "
                "pass --follow-redirects-anywhere to allow it"
            )
        for name in secret_names:  # credentials stay with the server they were meant for
            request.headers.pop(name, None)

    return httpx.Client(
        timeout=httpx.Timeout(options.timeout),
        headers={
            "Accept-Encoding": "identity",
            "User-Agent": f"export-tally/{__version__}",
            **dict(options.headers),
        },
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
        verify=_ssl_context(options.verify),
        trust_env=not is_loopback(urlsplit(options.base_url).hostname),
        event_hooks={"request": [guard_redirect]},
    )


def unreachable_message(options: ClientOptions, cause: str) -> str:
    return (
        f"cannot reach {options.shown_url} ({cause}): start the server with "
        "`uv run server`, or pass --server"
    )


@contextmanager
def get_stream(
    client: httpx.Client, url: str, headers: dict[str, str] | None = None
) -> Iterator[httpx.Response]:
    """`client.stream("GET", ...)`, with a redirect loop turned into the tool's own error.

    Every request the tool makes goes through here, so no caller needs its own case for it.
    """
    try:
        with client.stream("GET", url, headers=headers) as response:
            yield response
    except httpx.TooManyRedirects as exc:
        raise ServerUnreachableError(
            f"GET {shown(url)}: more than {MAX_REDIRECTS} redirects"
        ) from exc


def fail_unless_transient(where: str, status: int) -> None:
    """Raise for an error status that no retry can cure; return for a transient one.

    Refused credentials are never retried: trying again would only lock an account sooner.
    """
    if status in (401, 403):
        raise ServerUnreachableError(
            f"{where}: the server refused the credentials (HTTP {status}); check --token or --header"
        )
    if not is_retryable_status(status):
        raise ServerUnreachableError(f"{where} answered HTTP {status}")


@dataclass(frozen=True)
class Reply:
    """A small answer read whole: status, body and where it came from."""

    status: int
    content: bytes
    content_type: str
    where: str


def _read_capped(response: httpx.Response) -> bytes:
    chunks = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_METADATA_BYTES:
            raise ProtocolError(
                f"{response.request.url} answered more than {MAX_METADATA_BYTES} bytes of metadata"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def request_with_retries(
    client: httpx.Client, options: ClientOptions, path: str, *, quick_connect: bool = False
) -> Reply:
    """GET `path` and read its (bounded) body; transient failures are retried per the policy.

    Returns a 2xx or 404 response (what a 404 means is the caller's business). Raises
    ServerUnreachableError for refused credentials, other error statuses, and failures that the
    retries did not cure.
    """
    url = options.url(path)
    where = shown(url)
    budget = RetryBudget(options.policy)
    quick_delays = list(QUICK_CONNECT_DELAYS)
    while True:
        try:
            with get_stream(client, url) as response:
                status = response.status_code
                if 200 <= status < 300 or status == 404:
                    content_type = response.headers.get("content-type", "")
                    return Reply(status, _read_capped(response), content_type, f"GET {where}")
                retry_after = retry_after_seconds(response)
        except httpx.ConnectError as exc:
            if quick_connect:
                if not quick_delays:
                    raise ServerUnreachableError(
                        unreachable_message(options, describe(exc))
                    ) from exc
                time.sleep(quick_delays.pop(0))
                continue
            if not budget.record_failure():
                raise ServerUnreachableError(f"GET {where} failed: {describe(exc)}") from exc
            budget.wait()
            continue
        except httpx.TransportError as exc:
            if not budget.record_failure():
                raise ServerUnreachableError(f"GET {where} failed: {describe(exc)}") from exc
            budget.wait()
            continue
        fail_unless_transient(f"GET {where}", status)
        if not budget.record_failure():
            raise ServerUnreachableError(
                f"GET {where} failed: HTTP {status}, {budget.attempts} attempts"
            )
        budget.wait(retry_after)
