"""The HTTP client: how it is configured, and one client per process.

`ClientOptions` is small and picklable: worker processes (or Dask workers) build their own client
from it, since an open connection pool cannot travel between processes. It carries the user's
headers (credentials among them), so its repr never shows them, and neither does any message.

Redirects are followed only within the server's origin (scheme, host and port) unless the user
allows any host; even then, the user's headers are never sent to another origin. Proxies come
from the standard environment variables, except for a loopback server, which is always direct.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpcore  # noqa: F401 (ahead: see below)
import httpx

from export_tally import __version__
from export_tally.errors import RedirectRefusedError
from export_tally.transport.retry import RetryPolicy
from export_tally.transport.shared_terms import MAX_REDIRECTS, redact_url

# httpcore is imported above although only httpx uses it: httpx imports it when the first client
# is made, 50 ms of compiling; imported with this module, it is done while the bundled server
# starts (cli imports this module then), not after.


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
    def redacted_url(self) -> str:
        """The server's URL as messages show it: without any user:password part."""
        return redact_url(self.base_url)


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


def _ssl_context(options: ClientOptions) -> ssl.SSLContext | bool:
    verify = options.verify
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    if verify and _never_tls(options):
        # httpx loads the system's CA bundle into every client it makes (60 ms here, in the tool
        # and in each worker); a client that cannot leave a plain-http loopback origin never
        # uses it. A context without CAs verifies nothing: used, it would refuse, not accept.
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    return verify


def _never_tls(options: ClientOptions) -> bool:
    """Whether a client for `options` never makes a TLS connection: an http:// loopback server
    (so no proxy either) whose redirects may not leave its origin."""
    parts = urlsplit(options.base_url)
    return parts.scheme == "http" and is_loopback(parts.hostname) and not options.redirects_anywhere


_clients: dict[ClientOptions, httpx.Client] = {}
_clients_lock = threading.Lock()  # Dask runs tasks in threads: build each client once


def _forget_clients() -> None:
    """In a forked child (a local worker): the parent's connections are not its to use, and a
    thread that no longer exists may have held the lock."""
    global _clients_lock
    _clients_lock = threading.Lock()
    _clients.clear()


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_forget_clients)


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
                f"{options.redacted_url} redirected to another host ({request.url.host}); "
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
        verify=_ssl_context(options),
        trust_env=not is_loopback(urlsplit(options.base_url).hostname),
        event_hooks={"request": [guard_redirect]},
    )
