"""The HTTP client: how it is configured, and one client per process.

`ClientOptions` is small and picklable: worker processes (or Dask workers) build their own client
from it, since an open connection pool cannot travel between processes. It carries the user's
headers (credentials among them), so its repr never shows them, and neither does any message.

Redirects are followed only within the server's origin (scheme, host and port) unless the user
allows any host; even then, the user's headers are never sent to another origin. Proxies come
from the standard environment variables, except for a loopback server, which is always direct.

With SMART Backend Services credentials, every request carries an access token: each process's
client gets its own tokens (transport/smart.py), through a second client of its own that sends
no user header and follows no redirect, as the token endpoint may be on another host.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpcore  # noqa: F401 (ahead: see below)
import httpx

from export_tally import __version__
from export_tally.errors import RedirectRefusedError
from export_tally.transport.retry import RetryPolicy
from export_tally.transport.shared_terms import MAX_REDIRECTS, redact_url

if TYPE_CHECKING:
    from export_tally.transport.smart_credentials import SmartCredentials

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
    # SMART Backend Services: the client id and key (repr redacted), and the FHIR base URL whose
    # `.well-known/smart-configuration` names the token endpoint (None: `base_url`).
    credentials: SmartCredentials | None = None
    smart_base_url: str | None = None

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    @property
    def redacted_url(self) -> str:
        """The server's URL as messages show it: without any user:password part."""
        return redact_url(self.base_url)

    @property
    def smart_base(self) -> str:
        """Where `.well-known/smart-configuration` is read: the FHIR base URL."""
        return (self.smart_base_url or self.base_url).rstrip("/")


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
    if options.credentials is not None:
        return False  # the token endpoint may be anywhere
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


class _Client(httpx.Client):
    """A client that closes, with itself, the one its SMART auth gets tokens through."""

    token_client: httpx.Client | None = None

    def close(self) -> None:
        super().close()
        if self.token_client is not None:
            self.token_client.close()


def make_client(
    options: ClientOptions, token_clock: Callable[[], float] | None = None
) -> httpx.Client:
    """A client for one process. `identity` encoding keeps byte offsets valid for Range resumes.

    With `options.credentials`, every request carries this client's own access token, renewed
    as it nears its end by `token_clock` (monotonic seconds; tests pass their own).
    """
    home = _origin(options.base_url)
    secret_names = {name.lower() for name, _ in options.headers}
    if options.credentials is not None:
        secret_names.add("authorization")  # the token stays with the server it was meant for

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

    verify = _ssl_context(options)
    token_client = None if options.credentials is None else _token_client(options, verify)
    client = _Client(
        auth=None if token_client is None else _smart_auth(options, token_client, token_clock),
        timeout=httpx.Timeout(options.timeout),
        headers={
            "Accept-Encoding": "identity",
            "User-Agent": f"export-tally/{__version__}",
            **dict(options.headers),
        },
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
        verify=verify,
        trust_env=not is_loopback(urlsplit(options.base_url).hostname),
        event_hooks={"request": [guard_redirect]},
    )
    client.token_client = token_client
    return client


def _token_client(options: ClientOptions, verify: ssl.SSLContext | bool) -> httpx.Client:
    """The client tokens are asked for with: the same TLS and timeout, but none of the user's
    headers (the token endpoint may be another host's) and no redirect (a token request that
    went elsewhere would take a signed assertion with it)."""
    return httpx.Client(
        timeout=httpx.Timeout(options.timeout),
        headers={"User-Agent": f"export-tally/{__version__}"},
        verify=verify,
        trust_env=not is_loopback(urlsplit(options.smart_base).hostname),
    )


def _smart_auth(
    options: ClientOptions, token_client: httpx.Client, clock: Callable[[], float] | None
) -> httpx.Auth:
    """This process's SMART tokens as an httpx auth (the JWT library imported only now)."""
    from export_tally.transport.smart import SmartAuth, SmartTokens

    assert options.credentials is not None
    tokens = SmartTokens(options.credentials, options.smart_base, clock or time.monotonic)
    return SmartAuth(tokens, token_client)
