"""FHIR OperationOutcomes: the one line an error answer says, and the summary of `error` files.

A FHIR server explains a failure with an OperationOutcome: a list of issues, each with a
severity (fatal, error, warning, information, success), a code from the IssueType value set and
a text (`diagnostics`, or `details.text`). A failed request says why in one line made from its
first issue; an export's `error` files (NDJSON, one OperationOutcome a line) are counted by
severity and code, with their first few texts.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from export_tally.errors import DownloadGoneError, ProtocolError
from export_tally.transport.driver import Exchange, drive
from export_tally.transport.retry import REAL_CLOCK, Clock
from export_tally.transport.shared_terms import redact_url

if TYPE_CHECKING:
    import httpx

    from export_tally.transport.client import ClientOptions
    from export_tally.transport.retry import OutageCallback

# The IssueType code `transient` and the codes under it: "try again later", not "it failed".
TRANSIENT_CODES = frozenset(
    {"transient", "lock-error", "no-store", "exception", "timeout", "incomplete", "throttled"}
)
FAILING_SEVERITIES = frozenset({"fatal", "error"})
MAX_ERROR_BODY = 1024 * 1024  # an error answer's body beyond this is not an explanation
MAX_LINE_BYTES = 16 * 1024 * 1024  # one OperationOutcome in an error file
MAX_TEXT = 200  # characters of a server's text shown in a message
FIRST_TEXTS = 5  # diagnostics quoted in a summary
NDJSON = "application/fhir+ndjson"
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


@dataclass(frozen=True)
class Issue:
    severity: str
    code: str
    text: str  # one printable line, possibly empty


def clean_text(value: object, limit: int = MAX_TEXT) -> str:
    """A server's text made one printable line of at most `limit` characters."""
    text = " ".join(_UNPRINTABLE.sub(" ", str(value)).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def issues_of(resource: Any) -> tuple[Issue, ...] | None:
    """The issues of an OperationOutcome (a parsed JSON value), or None if it is not one."""
    if not isinstance(resource, dict) or resource.get("resourceType") != "OperationOutcome":
        return None
    raw = resource.get("issue")
    if not isinstance(raw, list) or not raw:
        return None
    issues = []
    for item in raw:
        if not isinstance(item, dict):
            return None
        details = item.get("details")
        text = item.get("diagnostics") or (
            details.get("text") if isinstance(details, dict) else None
        )
        issues.append(
            Issue(
                clean_text(item.get("severity") or "unknown", 40),
                clean_text(item.get("code") or "unknown", 40),
                clean_text(text) if text else "",
            )
        )
    return tuple(issues)


def read_outcome(body: bytes) -> tuple[Issue, ...] | None:
    """The issues of a body that is an OperationOutcome in JSON, else None."""
    try:
        return issues_of(json.loads(body))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def read_error_body(response: httpx.Response) -> bytes:
    """An error answer's body, at most MAX_ERROR_BODY bytes of it (the rest is not read)."""
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_ERROR_BODY:
            break
    return b"".join(chunks)[:MAX_ERROR_BODY]


def describe_issues(issues: Sequence[Issue]) -> str:
    """One line from an OperationOutcome: its first issue's severity, code and text."""
    first = issues[0]
    more = f" (and {len(issues) - 1} more issues)" if len(issues) > 1 else ""
    text = f": {first.text}" if first.text else ""
    return f"{first.severity} {first.code}{text}{more}"


def explain_error(response: httpx.Response) -> tuple[str, tuple[Issue, ...] | None]:
    """One line saying why an error answer failed, and its OperationOutcome's issues (if any)."""
    issues = read_outcome(read_error_body(response))
    status = response.status_code
    if issues is None:
        kind = response.headers.get("content-type", "no content type").split(";")[0]
        return f"HTTP {status}, no OperationOutcome ({clean_text(kind, 60)})", None
    return f"HTTP {status}: {describe_issues(issues)}", issues


def is_transient(issues: Iterable[Issue]) -> bool:
    """Whether an outcome says "try again later": a transient code, and no other failure."""
    issues = list(issues)
    failing = [issue for issue in issues if issue.severity in FAILING_SEVERITIES] or issues
    return all(issue.code in TRANSIENT_CODES for issue in failing)


@dataclass(frozen=True)
class ErrorSummary:
    """What an export's `error` files say: outcomes, their issues by severity and by code (sorted
    by count, then name), and the first few texts. `fails_run` when any issue is error or fatal."""

    files: int
    outcomes: int
    by_severity: tuple[tuple[str, int], ...]
    by_code: tuple[tuple[str, int], ...]
    first_texts: tuple[str, ...]

    @property
    def fails_run(self) -> bool:
        return any(severity in FAILING_SEVERITIES for severity, _ in self.by_severity)

    def describe(self) -> str:
        """One line: `3 OperationOutcomes in 1 error file: 2 error, 1 warning; codes: ...`."""
        severities = ", ".join(f"{n} {name}" for name, n in self.by_severity) or "no issues"
        codes = ", ".join(f"{n} {name}" for name, n in self.by_code)
        plural = "" if self.outcomes == 1 else "s"
        files = f"{self.files} error file{'' if self.files == 1 else 's'}"
        return f"{self.outcomes} OperationOutcome{plural} in {files}: {severities}" + (
            f" (codes: {codes})" if codes else ""
        )


def _ranked(counter: Counter[str]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(counter.items(), key=lambda item: (-item[1], item[0])))


class ErrorTally:
    """Counts the OperationOutcomes of error files, line by line; mergeable."""

    def __init__(self) -> None:
        self.files = 0
        self.outcomes = 0
        self.severities: Counter[str] = Counter()
        self.codes: Counter[str] = Counter()
        self.texts: list[str] = []

    def add_line(self, name: str, number: int, line: bytes) -> None:
        """Count line `number` of file `name`; ProtocolError naming both for a line that is not
        an OperationOutcome. A blank line is not an outcome, and is passed over."""
        if not line.strip():
            return
        issues = read_outcome(line)
        if issues is None:
            raise ProtocolError(f"error file {name} line {number}: not an OperationOutcome")
        self.outcomes += 1
        for issue in issues:
            self.severities[issue.severity] += 1
            self.codes[issue.code] += 1
        if len(self.texts) < FIRST_TEXTS:
            self.texts.append(describe_issues(issues))

    def merge(self, other: ErrorTally) -> None:
        self.files += other.files
        self.outcomes += other.outcomes
        self.severities.update(other.severities)
        self.codes.update(other.codes)
        self.texts.extend(other.texts[: FIRST_TEXTS - len(self.texts)])

    def summary(self) -> ErrorSummary:
        return ErrorSummary(
            self.files,
            self.outcomes,
            _ranked(self.severities),
            _ranked(self.codes),
            tuple(self.texts),
        )


class _ErrorFile(Exchange[ErrorTally]):
    """One error file, counted as it arrives; a body cut off is counted again from the start."""

    counts_attempts = True

    def __init__(self, url: str) -> None:
        self.name = redact_url(url)

    def headers(self) -> dict[str, str]:
        return {"Accept": NDJSON}

    def accepts(self, status: int) -> bool:
        return status == 200

    def read(self, response: httpx.Response, attempts: int) -> ErrorTally:
        tally = ErrorTally()
        tally.files = 1
        number = 0
        buffer = bytearray()
        for chunk in response.iter_bytes():
            buffer += chunk
            end = buffer.rfind(b"\n")
            if end < 0:
                if len(buffer) > MAX_LINE_BYTES:
                    raise ProtocolError(f"error file {self.name}: a line of over 16 MiB")
                continue
            for line in bytes(buffer[:end]).split(b"\n"):
                number += 1
                tally.add_line(self.name, number, line)
            del buffer[: end + 1]
        tally.add_line(self.name, number + 1, bytes(buffer))  # no final newline
        return tally

    def raise_for_status(self, where: str, status: int) -> None:
        if status in (404, 410):
            raise DownloadGoneError(f"{where}: the error file is gone (HTTP {status})")


def summarise_error_files(
    client: httpx.Client,
    options: ClientOptions,
    urls: Sequence[str],
    *,
    on_outage: OutageCallback | None = None,
    clock: Clock = REAL_CLOCK,
) -> ErrorSummary:
    """Fetch every error file (one after another: they are small) and summarise them.

    Raises as `drive` does; DownloadGoneError for a file that answers 404 or 410; ProtocolError
    for a line that is not an OperationOutcome.
    """
    total = ErrorTally()
    for url in urls:
        tally = drive(client, options, url, _ErrorFile(url), on_outage=on_outage, clock=clock)
        total.merge(tally)
    return total.summary()
