"""The HTTP client: how it is configured, and one request with retries.

`ClientOptions` is small and picklable: worker processes (or Dask workers) build their own client
from it, since an open connection pool cannot travel between processes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import httpx

from export_tally import __version__
from export_tally.errors import ProtocolError, ServerUnreachableError
from export_tally.retry import (
    RetryBudget,
    RetryPolicy,
    describe,
    is_retryable_status,
    retry_after_seconds,
)

# Discovery answers are small; a bigger one is not the API, and must not fill memory.
MAX_METADATA_BYTES = 16 * 1024 * 1024
# At start-up, connection refused is tried this many times, this far apart (about two seconds).
QUICK_CONNECT_DELAYS = (0.5, 1.0)


@dataclass(frozen=True)
class ClientOptions:
    """Where the server is and how to talk to it; `timeout` applies to connect and each read."""

    base_url: str
    timeout: float = 30.0
    policy: RetryPolicy = field(default_factory=RetryPolicy)

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path


def make_client(options: ClientOptions) -> httpx.Client:
    """A client for one process. `identity` encoding keeps byte offsets valid for Range resumes."""
    return httpx.Client(
        timeout=httpx.Timeout(options.timeout),
        headers={"Accept-Encoding": "identity", "User-Agent": f"export-tally/{__version__}"},
        follow_redirects=False,
    )


def unreachable_message(options: ClientOptions, cause: str) -> str:
    return (
        f"cannot reach {options.base_url} ({cause}): start the server with "
        "`uv run server`, or pass --server"
    )


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
    budget = RetryBudget(options.policy)
    quick_delays = list(QUICK_CONNECT_DELAYS)
    while True:
        try:
            with client.stream("GET", url) as response:
                status = response.status_code
                if 200 <= status < 300 or status == 404:
                    content_type = response.headers.get("content-type", "")
                    return Reply(status, _read_capped(response), content_type, f"GET {url}")
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
                raise ServerUnreachableError(f"GET {url} failed: {describe(exc)}") from exc
            budget.wait()
            continue
        except httpx.TransportError as exc:
            if not budget.record_failure():
                raise ServerUnreachableError(f"GET {url} failed: {describe(exc)}") from exc
            budget.wait()
            continue
        if status in (401, 403):
            raise ServerUnreachableError(
                f"GET {url}: the server refused the credentials (HTTP {status}); "
                "check --token or --header"
            )
        if not is_retryable_status(status):
            raise ServerUnreachableError(f"GET {url} answered HTTP {status}")
        if not budget.record_failure():
            raise ServerUnreachableError(
                f"GET {url} failed: HTTP {status}, {budget.attempts} attempts"
            )
        budget.wait(retry_after)
