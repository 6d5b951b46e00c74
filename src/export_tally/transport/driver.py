"""The one retrying loop: every request the tool makes runs through `drive`.

The loop owns what every request shares: the retry budget and outage clock (retry.py), which
statuses are final and which transient, Retry-After, turning httpx's exceptions into the tool's
errors, and the messages that say so. What differs between a metadata request, a whole download
and one byte range of a download is an `Exchange`: which headers to send, which answers it accepts
and how it reads them, how far its attempts got, and what to keep when an answer is cut off.
An exchange also names its method (a FHIR job is deleted with DELETE) and may read an error answer
itself: to wait it out like an outage (a FHIR server's `transient` OperationOutcome, its 429), or
to raise with what the body says.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import contextmanager
from typing import TYPE_CHECKING, Generic, TypeVar
from urllib.parse import urlsplit

import httpx

from export_tally.errors import DownloadGoneError, ProtocolError, ServerUnreachableError
from export_tally.transport.retry import (
    REAL_CLOCK,
    OutageEvent,
    RetryBudget,
    describe,
    is_outage_error,
    is_outage_status,
    is_retryable_status,
    retry_after_seconds,
)
from export_tally.transport.shared_terms import MAX_REDIRECTS, redact_url

if TYPE_CHECKING:
    from collections.abc import Iterator

    from export_tally.transport.client import ClientOptions
    from export_tally.transport.retry import Clock, OutageCallback
    from export_tally.transport.shared_terms import ProgressCallback, RemoteFile

# At start-up, connection refused is tried this many times, this far apart (about two seconds).
QUICK_CONNECT_DELAYS = (0.5, 1.0)

T = TypeVar("T")


@contextmanager
def get_stream(
    client: httpx.Client, url: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> Iterator[httpx.Response]:
    """`client.stream(method, ...)`, with a redirect loop turned into the tool's own error."""
    try:
        with client.stream(method, url, headers=headers) as response:
            yield response
    except httpx.TooManyRedirects as exc:
        raise ServerUnreachableError(
            f"{method} {redact_url(url)}: more than {MAX_REDIRECTS} redirects"
        ) from exc


def is_absolute(url: str) -> bool:
    """Whether `url` names its server (an http(s) URL), rather than a path under the base URL."""
    return urlsplit(url).scheme in ("http", "https")


class Exchange(ABC, Generic[T]):
    """What one kind of request plugs into `drive`; the defaults suit a one-shot small answer."""

    # Whether a transport failure's message says how many attempts were made (body requests).
    counts_attempts = False
    method = "GET"

    def headers(self) -> dict[str, str]:
        """The headers of the next attempt (a resume asks for where the last one stopped)."""
        return {}

    def accepts(self, status: int) -> bool:
        """Whether an answer with this status is for `read` (else the loop's status policy)."""
        return 200 <= status < 300

    @abstractmethod
    def read(self, response: httpx.Response, attempt: int) -> T | None:
        """Read an answer this exchange accepts, on attempt number `attempt`.

        Returns the result, or None to ask again at once without counting a failure (the exchange
        has started over). A transport failure while reading is the loop's business.
        """

    def raise_for_status(self, where: str, status: int) -> None:
        """Raise for a status no retry can cure that only this exchange gives a meaning to."""

    def waits_out(self, where: str, response: httpx.Response) -> bool:
        """For an answer `accepts` does not accept: True to try again by the outage clock (the server
        is not ready, however often it answers), False for the loop's status policy.

        It may read the body, and raise for an answer whose body says why no retry can cure it.
        """
        return is_outage_status(response.status_code)

    def progress(self) -> int:
        """How far into the answer the attempts have got (bytes); more than ever before is progress."""
        return 0

    def cut_off(self) -> None:
        """The answer was cut off while `read` read it: what arrived has been kept."""


class BodyExchange(Exchange[T]):
    """A request for (part of) a download's body: 404 means it is gone, 416 a refused resume.

    It reports the rows counted so far to `report` as they change.
    """

    counts_attempts = True

    def __init__(self, file: RemoteFile, report: ProgressCallback | None) -> None:
        self.file = file
        self.report = report
        self.reported = 0

    def report_rows(self, rows: int) -> None:
        """The parser has counted `rows` rows in all (fewer than before when it started over)."""
        if self.report is not None and rows != self.reported:
            self.report(rows - self.reported)
        self.reported = rows

    def accepts(self, status: int) -> bool:
        return status in (200, 206)  # a 206 that is not what was asked is read's to judge

    def raise_for_status(self, where: str, status: int) -> None:
        if status == 404:
            raise DownloadGoneError(
                f"{self.file.label} of export {self.file.export_id!r} is gone (HTTP 404)"
            )
        if status == 416:
            raise ProtocolError(f"{where}: the server refused to resume (HTTP 416)")


def unreachable_message(options: ClientOptions, cause: str) -> str:
    return (
        f"cannot reach {options.redacted_url} ({cause}): start the server with "
        "`uv run server`, or pass --server"
    )


def _refuse_final(where: str, status: int, options: ClientOptions) -> None:
    """Raise for an error status that no retry can cure; return for a transient one.

    Refused credentials are never retried: trying again would only lock an account sooner (a
    SMART client has already tried once more with a new token, in its auth).
    """
    if status in (401, 403):
        check = (
            "--client-id and --scope"
            if options.credentials
            else "--token or --header, or --client-id and --private-key for a SMART server"
        )
        raise ServerUnreachableError(
            f"{where}: the server refused the credentials (HTTP {status}); check {check}"
        )
    if not is_retryable_status(status):
        raise ServerUnreachableError(f"{where} answered HTTP {status}")


class _Attempts:
    """One request's budget, outage clock and outage reports; raises when either runs out."""

    def __init__(
        self, options: ClientOptions, on_outage: OutageCallback | None, clock: Clock
    ) -> None:
        self.policy = options.policy
        self.budget = RetryBudget(options.policy, clock)
        self.on_outage = on_outage

    @property
    def next(self) -> int:
        """The number of the attempt under way (1 for the first)."""
        return self.budget.attempts + 1

    def answered(self) -> None:
        event = self.budget.reached()
        if event is not None and self.on_outage is not None:
            self.on_outage(event)

    def outage(
        self, failure: str, cause: BaseException | None = None, retry_after: float | None = None
    ) -> None:
        """The server could not be reached: wait, or raise once the outage has lasted too long."""
        budget = self.budget
        began = budget.down_since is None
        allowed = budget.record_outage()
        if began and self.on_outage is not None and budget.down_since is not None:
            self.on_outage(OutageEvent(budget.down_since))
        if not allowed:
            raise ServerUnreachableError(
                f"{failure}; the server was unreachable for {budget.outage_seconds():.0f} s "
                f"(--max-outage {self.policy.max_outage:g})"
            ) from cause
        budget.wait_outage(retry_after)

    def failure(
        self,
        failure: str,
        progress: int,
        cause: BaseException | None = None,
        retry_after: float | None = None,
    ) -> None:
        """A counted failure: wait, or raise once the retries are used up."""
        if not self.budget.record_failure(progress):
            raise ServerUnreachableError(failure) from cause
        self.budget.wait(retry_after)


def drive(
    client: httpx.Client,
    options: ClientOptions,
    path: str,
    exchange: Exchange[T],
    *,
    quick_connect: bool = False,
    on_outage: OutageCallback | None = None,
    clock: Clock = REAL_CLOCK,
) -> T:
    """Request `path` (under the base URL, or an absolute URL) with the exchange's method until
    `exchange` has its result, retrying transient failures per the policy; `clock` waits.

    With `quick_connect` (start-up requests), connection refused is tried QUICK_CONNECT_DELAYS
    more times, then fails: a mistyped server should not be waited for. `on_outage` hears when
    the server becomes unreachable and when it answers again. `clock` is where it reads the time
    and waits (tests give their own).

    Raises ServerUnreachableError for refused credentials, final statuses, a redirect loop and
    failures the retries (or the outage limit) did not cure; whatever `exchange` raises.
    """
    url = path if is_absolute(path) else options.url(path)
    where = f"{exchange.method} {redact_url(url)}"
    attempts = _Attempts(options, on_outage, clock)
    quick_delays = list(QUICK_CONNECT_DELAYS) if quick_connect else None
    while True:
        reading = False  # whether an answer is being read (a failure now cuts it off)
        try:
            with get_stream(client, url, exchange.headers(), exchange.method) as response:
                status = response.status_code
                taken = exchange.accepts(status)
                # Asked first: an answer waited out must not end the outage clock it runs on.
                outage = not taken and exchange.waits_out(where, response)
                if not outage:
                    attempts.answered()
                if taken:
                    reading = True
                    result = exchange.read(response, attempts.next)
                    if result is None:
                        continue
                    return result
                exchange.raise_for_status(where, status)
                if not outage:
                    _refuse_final(where, status, options)
                retry_after = retry_after_seconds(response, clock)
        except httpx.TransportError as exc:
            cause = describe(exc)
            if not reading and quick_delays is not None and isinstance(exc, httpx.ConnectError):
                if not quick_delays:
                    raise ServerUnreachableError(unreachable_message(options, cause)) from exc
                clock.sleep(quick_delays.pop(0))
                continue
            after = f" after {attempts.next} attempts" if exchange.counts_attempts else ""
            failure = f"{where} failed{after}: {cause}"
            if not reading and is_outage_error(exc):
                attempts.outage(failure, exc)
                continue
            reached = exchange.progress()
            if reading:
                exchange.cut_off()
            attempts.failure(failure, reached, exc)
            continue
        failure = f"{where} failed: HTTP {status}, {attempts.next} attempts"
        if outage:
            attempts.outage(failure, retry_after=retry_after)
        else:
            attempts.failure(failure, exchange.progress(), retry_after=retry_after)
