"""When to try an HTTP request again, and how long to wait first.

Two kinds of transient failure, with two limits:

- An **outage**: the server cannot be reached at all. No answer came (connection refused or reset,
  DNS failure, a timeout before the status line), or a gateway answered 502, 503 or 504 for it.
  Outages are measured in time: the request is tried again, with backoff capped at
  `outage_max_delay`, until `max_outage` seconds have passed without the server answering.
- Any **other transient failure**: 429, 500, a body cut off or stalled mid-stream. These are
  counted: `retries` consecutive ones without progress end the request, and so do
  `cap_factor` x `retries` of them in all.

Everything else (404, 401, a malformed answer) is final.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
OUTAGE_STATUSES = frozenset({502, 503, 504})  # a gateway saying the server behind it is down
# Longest wait we accept from a server's Retry-After, so a hostile value cannot hang a run.
MAX_RETRY_AFTER = 60.0
# A Retry-After of more seconds than this is an epoch timestamp (one sample FHIR server sends
# those in its 429s): nobody means "come back in 30 years".
EPOCH_RETRY_AFTER = 10**9


@dataclass(frozen=True)
class Clock:
    """Where the retrying loop reads the time and waits: the real clocks, or a test's own.

    `wall` (seconds since the epoch) dates events for the user; `monotonic` measures outages.
    """

    wall: Callable[[], float] = field(default=time.time)
    monotonic: Callable[[], float] = field(default=time.monotonic)
    sleep: Callable[[float], None] = field(default=time.sleep)


REAL_CLOCK = Clock()


@dataclass(frozen=True)
class RetryPolicy:
    """`retries` bounds consecutive failures without progress; `cap_factor` x retries bounds all.

    An outage is waited out for up to `max_outage` seconds, trying again at most every
    `outage_max_delay` seconds (plus what a Retry-After asks for).
    """

    retries: int = 5
    base_delay: float = 0.25
    max_delay: float = 8.0
    cap_factor: int = 10
    max_outage: float = 120.0
    outage_max_delay: float = 5.0

    def delay(
        self, failures: int, retry_after: float | None = None, cap: float | None = None
    ) -> float:
        """Seconds to wait before the next attempt, after `failures` consecutive failures (>= 1).

        Exponential backoff from `base_delay`, capped at `cap` (default `max_delay`), with full
        jitter; a server's Retry-After is honoured as a minimum (up to MAX_RETRY_AFTER).
        """
        ceiling = self.max_delay if cap is None else cap
        # The exponent stops growing long before a float would overflow (a long outage).
        growth = 2.0 ** min(failures - 1, 64)
        backoff = random.uniform(0, min(ceiling, self.base_delay * growth))
        if retry_after is not None:
            return max(min(retry_after, MAX_RETRY_AFTER), backoff)
        return backoff


@dataclass(frozen=True)
class OutageEvent:
    """The server became unreachable at `since`, and reachable again at `back` once it is set.

    Times are seconds since the epoch (`time.time()`): the event travels from a worker to the
    process that tells the user, possibly on another machine.
    """

    since: float
    back: float | None = None


OutageCallback = Callable[[OutageEvent], None]


class RetryBudget:
    """Counts one request's (or one download's) failed attempts against a policy.

    An attempt that got further than every earlier one (progress) resets the count of consecutive
    failures, so a long download over a flaky link can finish; the overall cap still ends any loop.
    Attempts during an outage are not counted against either: the outage's clock bounds them.
    """

    def __init__(self, policy: RetryPolicy, clock: Clock = REAL_CLOCK) -> None:
        self.policy = policy
        self.clock = clock
        self.failures = 0  # consecutive counted failures without progress
        self.attempts = 0  # every failed attempt, outages included
        self.counted = 0  # failed attempts outside outages (the overall cap)
        self.best_progress = 0
        self.down_since: float | None = None  # wall clock, for the user
        self._down_from = 0.0  # monotonic, for the limit
        self._outage_failures = 0

    def record_failure(self, progress: int = 0) -> bool:
        """Note a failed attempt that reached `progress`; True when another attempt is allowed."""
        self.attempts += 1
        self.counted += 1
        if progress > self.best_progress:
            self.best_progress = progress
            self.failures = 0
        else:
            self.failures += 1
        return (
            self.failures <= self.policy.retries
            and self.counted < self.policy.retries * self.policy.cap_factor
        )

    def wait(self, retry_after: float | None = None) -> None:
        self.clock.sleep(self.policy.delay(max(1, self.failures), retry_after))

    def record_outage(self) -> bool:
        """Note an attempt that found the server unreachable; True while the outage may go on.

        The first one of an outage starts its clock (`down_since`).
        """
        self.attempts += 1
        self._outage_failures += 1
        if self.down_since is None:
            self.down_since = self.clock.wall()
            self._down_from = self.clock.monotonic()
        return self.outage_seconds() < self.policy.max_outage

    def outage_seconds(self) -> float:
        """How long the current outage has lasted (0 when there is none)."""
        return self.clock.monotonic() - self._down_from if self.down_since is not None else 0.0

    def wait_outage(self, retry_after: float | None = None) -> None:
        """Back off (capped at outage_max_delay), but never past the outage's end: the last
        attempt is made when `max_outage` is up."""
        policy = self.policy
        delay = policy.delay(self._outage_failures, retry_after, cap=policy.outage_max_delay)
        self.clock.sleep(max(0.0, min(delay, policy.max_outage - self.outage_seconds())))

    def reached(self) -> OutageEvent | None:
        """Note that the server answered; the event that ends the outage, if there was one."""
        if self.down_since is None:
            return None
        event = OutageEvent(self.down_since, self.clock.wall())
        self.down_since = None
        self._outage_failures = 0
        return event


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUSES


def is_outage_status(status: int) -> bool:
    return status in OUTAGE_STATUSES


def is_outage_error(exc: httpx.TransportError) -> bool:
    """Whether a failure before any answer means the server cannot be reached (vs. a final one).

    An untrusted certificate is a ConnectError too, but no wait will cure it.
    """
    unreachable = isinstance(
        exc, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError
    )
    return unreachable and not _untrusted(exc)


def _untrusted(exc: BaseException) -> bool:
    return isinstance(exc, httpx.ConnectError) and "CERTIFICATE_VERIFY_FAILED" in str(exc)


def retry_after_seconds(response: httpx.Response, clock: Clock = REAL_CLOCK) -> float | None:
    """The Retry-After header in seconds from now, if present and valid: delta-seconds, an HTTP
    date, or (a quirk of some servers) an epoch timestamp. Not capped: that is the caller's."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if seconds != seconds:  # NaN
            return None
        if seconds > EPOCH_RETRY_AFTER:
            seconds -= clock.wall()
        return max(0.0, seconds)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - clock.wall())


def describe(exc: BaseException) -> str:
    """A short, user-readable cause for a transport failure."""
    if isinstance(exc, httpx.ConnectError):
        if _untrusted(exc):
            return "its TLS certificate is not trusted; pass --cacert FILE (or --insecure)"
        return "connection refused or failed"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "connection closed before the body was complete"
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0]
