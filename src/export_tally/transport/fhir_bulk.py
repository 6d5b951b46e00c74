"""FHIR Bulk Data export (the async request pattern): kick off, poll, read the manifest, delete.

Kick-off: `GET BASE/Group/ID/$export` (or `BASE/Patient/$export`) with `Prefer: respond-async`;
the server answers 202 with the job's status URL in `Content-Location`. Polling that URL gives 202
(with `Retry-After` and `X-Progress`) until the job is done, then 200 and the manifest: the files
to fetch (`output`), the OperationOutcome files (`error`) and the deleted entries (`deleted`).
A DELETE on the status URL lets the server drop the files. Every request goes through `drive`:
its retries, outage clock and messages; an error answer says why in one line from its
OperationOutcome (fhir_outcomes.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode, urljoin

from export_tally.errors import (
    ExportJobGoneError,
    ProtocolError,
    ServerUnreachableError,
    UsageError,
)
from export_tally.transport.driver import Exchange, drive
from export_tally.transport.fhir_manifest import (
    RESOURCE_TYPE,
    Manifest,
    is_instant,
    parse_manifest,
)
from export_tally.transport.fhir_outcomes import (
    clean_text,
    explain_error,
    is_transient,
    read_error_body,
)
from export_tally.transport.retry import (
    MAX_RETRY_AFTER,
    REAL_CLOCK,
    Clock,
    OutageCallback,
    is_outage_status,
    retry_after_seconds,
)
from export_tally.transport.shared_terms import redact_url

if TYPE_CHECKING:
    import httpx

    from export_tally.transport.client import ClientOptions

FHIR_JSON = "application/fhir+json"
MAX_POLL_WAIT = 120.0  # the longest wait between polls, whatever Retry-After asks for
FIRST_POLL_WAIT = 1.0  # without Retry-After: 1, 2, 4 ... seconds, up to the cap
MAX_MANIFEST_BYTES = 64 * 1024 * 1024  # 20,000 files' entries take a few MB
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")

ProgressText = Callable[[str], None]  # the server's X-Progress, as it said it (one clean line)
LongWait = Callable[[float, float], None]  # (seconds asked for, seconds that will be waited)


@dataclass(frozen=True)
class ExportRequest:
    """What to export: a group's patients (or all patients), which types, changed since when.

    Checked when made: UsageError for a bad group id, type name or instant.
    """

    group: str | None = None
    types: tuple[str, ...] = ("Observation",)
    since: str | None = None

    def __post_init__(self) -> None:
        if self.group is not None and not FHIR_ID.fullmatch(self.group):
            raise UsageError(f"group id {self.group!r}: 1 to 64 letters, digits, '-' or '.'")
        if not self.types:
            raise UsageError("--type: name at least one resource type")
        for name in self.types:
            if not RESOURCE_TYPE.fullmatch(name):
                raise UsageError(f"--type {name!r} is not a FHIR resource type (e.g. Observation)")
        if self.since is not None and not is_instant(self.since):
            raise UsageError(
                f"--since {self.since!r} is not a FHIR instant (e.g. 2024-01-31T00:00:00Z)"
            )

    def path(self) -> str:
        """The kick-off's path and query, under the FHIR base URL."""
        where = f"/Group/{quote(self.group, safe='')}" if self.group else "/Patient"
        query = {"_type": ",".join(self.types)}
        if self.since is not None:
            query["_since"] = self.since
        return f"{where}/$export?{urlencode(query, safe=',:')}"


def _waits_out_fhir(response: httpx.Response) -> tuple[bool, str | None]:
    """What the async pattern makes of an error answer: (wait it out, why it failed for good).

    429 and a 5xx with a transient OperationOutcome are waited out; any other 4xx, or a 5xx
    with an OperationOutcome, has failed for good; refused credentials and a 5xx without an
    OperationOutcome (a gateway, a crash) are left to the loop's policy.
    """
    status = response.status_code
    if status == 429:
        return True, None
    if status < 400 or status in (401, 403):
        return False, None
    line, issues = explain_error(response)
    if issues is None and status >= 500:
        return is_outage_status(status), None
    if issues is not None and status >= 500 and is_transient(issues):
        return True, None
    return False, line


class _KickOff(Exchange[str]):
    """The kick-off: 202 and the status URL, or why not in one line (UsageError for a 400 or 404:
    a parameter or group the server does not have; ProtocolError for another 4xx)."""

    def __init__(self, request: ExportRequest) -> None:
        self.request = request

    def headers(self) -> dict[str, str]:
        return {"Accept": FHIR_JSON, "Prefer": "respond-async"}

    def read(self, response: httpx.Response, attempts: int) -> str:
        where = f"GET {redact_url(str(response.request.url))}"
        if response.status_code != 202:
            raise ProtocolError(
                f"{where} answered HTTP {response.status_code}, not 202 Accepted: "
                "is this a FHIR Bulk Data server?"
            )
        location = response.headers.get("content-location")
        if not location:
            raise ProtocolError(f"{where} answered 202 without a Content-Location (no status URL)")
        return str(urljoin(str(response.request.url), location))

    def waits_out(self, where: str, response: httpx.Response) -> bool:
        wait, failed = _waits_out_fhir(response)
        if failed is None:
            return wait
        status = response.status_code
        if status == 404 and self.request.group is not None:
            raise UsageError(f"group {self.request.group!r} not found: {where} answered {failed}")
        if status == 404:
            raise UsageError(f"{where} answered {failed}: is the URL a FHIR server's base?")
        if status in (400, 404, 422):
            raise UsageError(f"{where}: the server refused the export ({failed})")
        if status >= 500:
            raise ServerUnreachableError(f"{where}: the export could not start ({failed})")
        raise ProtocolError(f"{where}: {failed}")


@dataclass(frozen=True)
class _InProgress:
    retry_after: float | None
    progress: str | None


class _Status(Exchange[Manifest | _InProgress]):
    """One poll of the status URL: the manifest (200) or how the job is getting on (202)."""

    def __init__(
        self,
        status_url: str,
        types: Collection[str],
        clock: Clock,
        max_wait: float,
        on_long_wait: LongWait | None,
    ) -> None:
        self.status_url = status_url
        self.types = types
        self.clock = clock
        self.on_long_wait = on_long_wait
        self.told_long = False
        self.max_wait = max_wait

    def capped(self, response: httpx.Response, cap: float) -> None:
        """Tell `on_long_wait`, once per job, of a Retry-After longer than the wait it will get."""
        asked = retry_after_seconds(response, self.clock)
        if asked is not None and asked > cap and not self.told_long:
            self.told_long = True
            if self.on_long_wait is not None:
                self.on_long_wait(asked, cap)

    def headers(self) -> dict[str, str]:
        return {"Accept": "application/json"}

    def read(self, response: httpx.Response, attempts: int) -> Manifest | _InProgress:
        where = f"GET {redact_url(self.status_url)}"
        status = response.status_code
        if status == 202:
            self.capped(response, self.max_wait)
            progress = response.headers.get("x-progress")
            read_error_body(response)  # an optional OperationOutcome: read, so the link is reused
            return _InProgress(
                retry_after_seconds(response, self.clock),
                clean_text(progress, 100) if progress else None,
            )
        if status != 200:
            raise ProtocolError(f"{where} answered HTTP {status}, not 200 or 202")
        content = bytearray()
        for chunk in response.iter_bytes():
            content += chunk
            if len(content) > MAX_MANIFEST_BYTES:
                raise ProtocolError(f"{where}: a manifest of over {MAX_MANIFEST_BYTES} bytes")
        return parse_manifest(bytes(content), where, self.status_url, self.types)

    def waits_out(self, where: str, response: httpx.Response) -> bool:
        if response.status_code in (404, 410):
            line, _ = explain_error(response)
            raise ExportJobGoneError(
                f"{where}: the export job is gone ({line}): deleted, expired, or never there"
            )
        wait, failed = _waits_out_fhir(response)
        if failed is not None:
            raise ServerUnreachableError(f"{where}: the export failed ({failed})")
        if wait:
            self.capped(response, MAX_RETRY_AFTER)  # what the loop waits at most
        return wait


class _Delete(Exchange[bool]):
    method = "DELETE"

    def accepts(self, status: int) -> bool:
        return 200 <= status < 300 or status in (404, 410)

    def read(self, response: httpx.Response, attempts: int) -> bool:
        return response.status_code < 300


def kick_off(
    client: httpx.Client,
    options: ClientOptions,
    request: ExportRequest,
    *,
    on_outage: OutageCallback | None = None,
    clock: Clock = REAL_CLOCK,
) -> str:
    """Start an export job on the server at `options.base_url` (the FHIR base); its status URL.

    A mistyped server fails fast (as discovery does); 429 (a job already running) and transient
    outcomes are waited out within --max-outage. Raises UsageError (400, 404, 422), ProtocolError
    (another 4xx, no Content-Location, not 202), ServerUnreachableError (as `drive` does).
    """
    exchange = _KickOff(request)
    return drive(
        client, options, request.path(), exchange,
        quick_connect=True, on_outage=on_outage, clock=clock,
    )  # fmt: skip


def poll_status(
    client: httpx.Client,
    options: ClientOptions,
    status_url: str,
    types: Collection[str],
    *,
    on_progress: ProgressText | None = None,
    on_long_wait: LongWait | None = None,
    on_outage: OutageCallback | None = None,
    clock: Clock = REAL_CLOCK,
    max_wait: float = MAX_POLL_WAIT,
) -> Manifest:
    """Poll `status_url` until the job is done; its manifest, output filtered to `types`.

    Between polls: the server's Retry-After, capped at `max_wait`, else backoff from
    FIRST_POLL_WAIT. A Retry-After longer than the wait it gets (on a 429 or a transient error
    too, which the loop caps at MAX_RETRY_AFTER) is told to `on_long_wait` once: never slept
    through silently.
    Each X-Progress goes to `on_progress`. Raises ExportJobGoneError (404, 410),
    ServerUnreachableError (the job failed: its OperationOutcome's line; or as `drive` does),
    ProtocolError (a manifest that is not what the guide promises).
    """
    exchange = _Status(status_url, types, clock, max_wait, on_long_wait)
    backoff = FIRST_POLL_WAIT
    while True:
        answer = drive(client, options, status_url, exchange, on_outage=on_outage, clock=clock)
        if isinstance(answer, Manifest):
            return answer
        if answer.progress and on_progress is not None:
            on_progress(answer.progress)
        if answer.retry_after is None:
            wait, backoff = min(backoff, max_wait), backoff * 2
        else:
            wait = min(answer.retry_after, max_wait)
        clock.sleep(wait)


def delete_job(
    client: httpx.Client,
    options: ClientOptions,
    status_url: str,
    *,
    on_outage: OutageCallback | None = None,
    clock: Clock = REAL_CLOCK,
) -> bool:
    """DELETE the job once its files are counted: True when deleted (2xx), False when it was
    already gone (404, 410). Raises ServerUnreachableError as `drive` does for other answers."""
    return drive(client, options, status_url, _Delete(), on_outage=on_outage, clock=clock)
