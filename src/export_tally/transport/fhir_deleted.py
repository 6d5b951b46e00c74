"""A FHIR export's `deleted` files: the resources the server says were deleted, counted by type.

Each line of a `deleted` file is a Bundle (type `transaction`) whose entries are DELETE requests,
`request.url` naming the resource (`Observation/123`, relative or absolute). The tool counts them
and reports them; they are not in the counts (a deleted resource is not exported), and never
dropped silently: a line that is not such a Bundle is a ProtocolError naming file and line.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from export_tally.errors import DownloadGoneError, ProtocolError
from export_tally.transport.driver import Exchange, drive
from export_tally.transport.fhir_manifest import RESOURCE_TYPE
from export_tally.transport.retry import REAL_CLOCK, Clock
from export_tally.transport.shared_terms import redact_url

if TYPE_CHECKING:
    import httpx

    from export_tally.transport.client import ClientOptions
    from export_tally.transport.retry import OutageCallback

MAX_DELETED_BYTES = 256 * 1024 * 1024  # a Bundle line per deletion: millions of them fit
NDJSON = "application/fhir+ndjson"


def deleted_types(bundle: Any) -> list[str] | None:
    """The resource types a deletion Bundle (a parsed JSON line) names, one per entry; None if
    it is not a Bundle of entries with a `request.url`."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        return None
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        return None
    types = []
    for entry in entries:
        request = entry.get("request") if isinstance(entry, dict) else None
        url = request.get("url") if isinstance(request, dict) else None
        if not isinstance(url, str):
            return None
        parts = url.split("?")[0].rstrip("/").split("/")
        kind = parts[-2] if len(parts) >= 2 else ""
        types.append(kind if RESOURCE_TYPE.fullmatch(kind) else "unknown")
    return types


class _DeletedFile(Exchange[dict[str, int]]):
    """One deleted file read whole (bounded) and counted; a cut-off body is read again."""

    counts_attempts = True

    def __init__(self, url: str) -> None:
        self.name = redact_url(url)

    def headers(self) -> dict[str, str]:
        return {"Accept": NDJSON}

    def accepts(self, status: int) -> bool:
        return status == 200

    def read(self, response: httpx.Response, attempts: int) -> dict[str, int]:
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > MAX_DELETED_BYTES:
                raise ProtocolError(f"deleted file {self.name}: over {MAX_DELETED_BYTES} bytes")
        counts: Counter[str] = Counter()
        for number, line in enumerate(bytes(body).split(b"\n"), start=1):
            if not line.strip():
                continue
            try:
                types = deleted_types(json.loads(line))
            except (ValueError, UnicodeDecodeError, RecursionError):
                types = None
            if types is None:
                raise ProtocolError(
                    f"deleted file {self.name} line {number}: not a Bundle of deletions"
                )
            counts.update(types)
        return dict(counts)

    def raise_for_status(self, where: str, status: int) -> None:
        if status in (404, 410):
            raise DownloadGoneError(f"{where}: the deleted file is gone (HTTP {status})")


def count_deleted(
    client: httpx.Client,
    options: ClientOptions,
    urls: Sequence[str],
    *,
    on_outage: OutageCallback | None = None,
    clock: Clock = REAL_CLOCK,
) -> Counter[str]:
    """The deleted resources the files at `urls` list, per resource type. Raises as `drive`
    does; DownloadGoneError for a file that answers 404 or 410; ProtocolError for a bad line."""
    total: Counter[str] = Counter()
    for url in urls:
        counts: dict[str, int] = drive(
            client, options, url, _DeletedFile(url), on_outage=on_outage, clock=clock
        )
        total.update(counts)
    return total


def describe_deleted(counts: Counter[str]) -> str:
    """One line: `3 resources deleted since --since (2 Observation, 1 Patient): not counted`."""
    n = sum(counts.values())
    by_type = ", ".join(f"{k} {name}" for name, k in sorted(counts.items(), key=_ranked))
    plural = "" if n == 1 else "s"
    return (
        f"the server lists {n} deleted resource{plural} ({by_type}): deleted, so not in the counts"
    )


def _ranked(item: tuple[str, int]) -> tuple[int, str]:
    return (-item[1], item[0])
