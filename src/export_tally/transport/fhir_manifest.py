"""A FHIR Bulk Data completion manifest, checked, as plain values a run can schedule.

The manifest lists the export's files: `output` (resources, one type a file, NDJSON), `error`
(OperationOutcomes) and `deleted` (transaction Bundles of deletions), each entry with its `type`,
`url` and optionally `count` (its number of lines). Fields the guide does not define (an
`extension`, a later version's `continuesInFile`) are ignored: nothing here depends on them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from export_tally.errors import ProtocolError
from export_tally.transport.shared_terms import redact_url

RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]{0,63}")
INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)")


def is_instant(text: str) -> bool:
    """Whether `text` is a FHIR instant: a date and time to the second, with a time zone."""
    if not INSTANT.fullmatch(text):
        return False
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class ExportFile:
    """One file of a manifest: its URL, resource type and declared line count (None if not
    declared). `format` is what its lines are: NDJSON, the servers' default."""

    url: str
    type: str
    count: int | None
    format: str = "ndjson"


@dataclass(frozen=True)
class Manifest:
    """A finished export's manifest as plain values. `files` are the `output` files of the types
    asked for, `unrequested` those of other types (a server may add some; they are not counted)."""

    transaction_time: str
    request: str
    requires_access_token: bool
    files: tuple[ExportFile, ...]
    errors: tuple[ExportFile, ...]
    deleted: tuple[ExportFile, ...]
    unrequested: tuple[ExportFile, ...] = ()


def _entries(body: dict[str, Any], name: str, where: str, base: str) -> tuple[ExportFile, ...]:
    raw = body.get(name, [])
    if not isinstance(raw, list):
        raise ProtocolError(f"{where}: the manifest's {name!r} is not a list")
    entries = []
    for index, item in enumerate(raw):
        what = f"{where}: the manifest's {name}[{index}]"
        if not isinstance(item, dict):
            raise ProtocolError(f"{what} is not an object")
        kind, url, count = item.get("type"), item.get("url"), item.get("count")
        if not isinstance(kind, str) or not kind:
            raise ProtocolError(f"{what} has no 'type'")
        if not RESOURCE_TYPE.fullmatch(kind):
            raise ProtocolError(f"{what}: 'type' is not a FHIR resource type")
        if not isinstance(url, str) or not url:
            raise ProtocolError(f"{what} has no 'url'")
        url = urljoin(base, url)  # the guide says absolute; a relative one is read as a link
        if urlsplit(url).scheme not in ("http", "https"):
            raise ProtocolError(f"{what}: 'url' is not an http(s) URL")
        if count is not None and (type(count) is not int or count < 0):
            raise ProtocolError(f"{what}: 'count' is not a non-negative integer")
        entries.append(ExportFile(url, kind, count))
    return tuple(entries)


def parse_manifest(content: bytes, where: str, status_url: str, types: Collection[str]) -> Manifest:
    """Check a completion manifest and keep what a run needs; unknown fields are ignored.

    ProtocolError names the first thing wrong: not JSON, a required field missing or of the
    wrong type, an entry without type or URL, a bad count, a file listed twice.
    """
    try:
        body = json.loads(content)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ProtocolError(f"{where} answered 200 without a JSON manifest") from None
    if not isinstance(body, dict):
        raise ProtocolError(f"{where}: the manifest is not a JSON object")
    time, request, token = (
        body.get(k) for k in ("transactionTime", "request", "requiresAccessToken")
    )
    if not isinstance(time, str) or not is_instant(time):
        raise ProtocolError(
            f"{where}: the manifest's 'transactionTime' is missing or not an instant"
        )
    if not isinstance(request, str):
        raise ProtocolError(f"{where}: the manifest's 'request' is missing or not a string")
    if not isinstance(token, bool):
        raise ProtocolError(f"{where}: the manifest's 'requiresAccessToken' is not true or false")
    if "output" not in body:
        raise ProtocolError(f"{where}: the manifest has no 'output' list")
    output = _entries(body, "output", where, status_url)
    urls = [entry.url for entry in output]
    if len(set(urls)) != len(urls):
        twice = next(url for url in urls if urls.count(url) > 1)
        raise ProtocolError(f"{where}: the manifest lists {redact_url(twice)} twice")
    wanted = set(types)
    return Manifest(
        transaction_time=time,
        request=request,
        requires_access_token=token,
        files=tuple(entry for entry in output if entry.type in wanted),
        errors=_entries(body, "error", where, status_url),
        deleted=_entries(body, "deleted", where, status_url),
        unrequested=tuple(entry for entry in output if entry.type not in wanted),
    )
