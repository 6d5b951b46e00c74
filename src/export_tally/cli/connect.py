"""Which server a run talks to, and how: the user's, or the bundled mock server started for it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from export_tally import __version__
from export_tally.errors import ServerUnreachableError

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import ExitStack

    from export_tally.cli.settings import Settings
    from export_tally.transport.client import ClientOptions


def connect(
    settings: Settings,
    say: Callable[[str], None],
    stack: ExitStack,
    meanwhile: Callable[[], None] = lambda: None,
) -> tuple[ClientOptions, str]:
    """The client options for the server to use, starting the bundled one when that is allowed
    (`stack` stops it); `say` tells the user a line on stderr; `meanwhile` runs while the bundled
    server starts (if it does).

    Returns the options and the server's identity for checkpoint keys (the embedded server's
    port changes every run, so its identity is its version instead).
    """
    url = settings.server_url
    if settings.insecure:
        say("warning: --insecure: the server's TLS certificate is not verified")
    embedded = None
    if not settings.server_explicit:
        from export_tally.cli.embedded import EmbeddedServer, is_listening

        if not is_listening(url):
            if settings.scheduler:
                raise ServerUnreachableError(
                    f"nothing answers at {url}, and --scheduler cannot use the bundled server "
                    "(remote workers could not reach it): pass --server with an address they can "
                    "reach"
                )
            if settings.embedded_allowed:
                embedded = EmbeddedServer()
                stack.callback(embedded.stop)
    meanwhile()
    from export_tally.transport.client import ClientOptions
    from export_tally.transport.retry import RetryPolicy

    embedded_identity: str | None = None
    if embedded is not None:
        embedded_url = embedded.wait_for_url()
        say(f"nothing answers at {url}; started the bundled mock server at {embedded_url} "
            "(mock data, not a real export)")  # fmt: skip
        url, embedded_identity = embedded_url, f"embedded-export-server/{__version__}"
    options = ClientOptions(
        url,
        settings.timeout,
        RetryPolicy(retries=settings.retries, max_outage=settings.max_outage),
        headers=settings.headers,
        verify=settings.tls_verify,
        redirects_anywhere=settings.follow_redirects_anywhere,
        credentials=settings.smart_credentials,
    )
    return options, embedded_identity or options.redacted_url
