"""When to try an HTTP request again, and how long to wait first.

Transient failures are connection errors, timeouts, a body cut off mid-stream, and the statuses
429, 500, 502, 503 and 504. Everything else (404, 401, a malformed answer) is final.
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass

import httpx

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# Longest wait we accept from a server's Retry-After, so a hostile value cannot hang a run.
MAX_RETRY_AFTER = 60.0


@dataclass(frozen=True)
class RetryPolicy:
    """`retries` bounds consecutive failures without progress; `cap_factor` x retries bounds all."""

    retries: int = 5
    base_delay: float = 0.25
    max_delay: float = 8.0
    cap_factor: int = 10

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        """Seconds to wait before the next attempt, after `failures` consecutive failures (>= 1).

        Exponential backoff with full jitter; a server's Retry-After is honoured as a minimum.
        """
        backoff = random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (failures - 1)))
        if retry_after is not None:
            return max(min(retry_after, MAX_RETRY_AFTER), backoff)
        return backoff


class RetryBudget:
    """Counts one request's (or one download's) attempts against a policy.

    An attempt that got further than every earlier one (progress) resets the count of consecutive
    failures, so a long download over a flaky link can finish; the overall cap still ends any loop.
    """

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.failures = 0  # consecutive failures without progress
        self.attempts = 0
        self.best_progress = 0

    def record_failure(self, progress: int = 0) -> bool:
        """Note a failed attempt that reached `progress`; True when another attempt is allowed."""
        self.attempts += 1
        if progress > self.best_progress:
            self.best_progress = progress
            self.failures = 0
        else:
            self.failures += 1
        return (
            self.failures <= self.policy.retries
            and self.attempts < self.policy.retries * self.policy.cap_factor
        )

    def wait(self, retry_after: float | None = None) -> None:
        time.sleep(self.policy.delay(max(1, self.failures), retry_after))


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUSES


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The Retry-After header in seconds (delta-seconds or an HTTP date), if present and valid."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def describe(exc: BaseException) -> str:
    """A short, user-readable cause for a transport failure."""
    if isinstance(exc, httpx.ConnectError):
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            return "its TLS certificate is not trusted; pass --cacert FILE (or --insecure)"
        return "connection refused or failed"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "connection closed before the body was complete"
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0]
