"""The export server's HTTP API as a source: exports, their downloads, each one's metadata.

`ExportApiSource` gives the run an export's downloads as files to fetch (CSV, a path on the
server, the rows their metadata declares); a second protocol is a sibling module. Every answer is checked against the shape the API promises: a successful response with anything
else (HTML, JSON of the wrong shape) is a ProtocolError, never a traceback or a silent guess.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from export_tally.core.aggregation import CSV
from export_tally.errors import DownloadGoneError, ProtocolError, UsageError
from export_tally.transport.driver import Exchange, drive
from export_tally.transport.shared_terms import RemoteFile, redact_url

if TYPE_CHECKING:
    import httpx

    from export_tally.transport.client import ClientOptions
    from export_tally.transport.retry import OutageCallback

# Discovery answers are small; a bigger one is not the API, and must not fill memory.
MAX_METADATA_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Reply:
    """A small answer read whole: status, body and where it came from."""

    status: int
    content: bytes
    content_type: str
    where: str


class _Metadata(Exchange[Reply]):
    """A discovery request: a 2xx or a 404 (what it means is the caller's business), read whole."""

    def __init__(self, where: str) -> None:
        self.where = where

    def accepts(self, status: int) -> bool:
        return 200 <= status < 300 or status == 404

    def read(self, response: httpx.Response, attempt: int) -> Reply:
        content_type = response.headers.get("content-type", "")
        return Reply(response.status_code, _read_capped(response), content_type, self.where)


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


def _data(reply: Reply) -> dict[str, Any]:
    """The `data` object of an API answer, or ProtocolError naming what was wrong."""
    where, content_type = reply.where, reply.content_type
    try:
        body = json.loads(reply.content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        kind = (
            "HTML" if "html" in content_type else f"non-JSON ({content_type or 'no content type'})"
        )
        raise ProtocolError(
            f"{where} answered {kind} instead of JSON: is this an export server?"
        ) from None
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        raise ProtocolError(
            f"{where} answered JSON without a 'data' object: is this an export server?"
        )
    data: dict[str, Any] = body["data"]
    return data


def _field(data: dict[str, Any], name: str, kind: type, where: str) -> Any:
    value = data.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ProtocolError(f"{where}: field {name!r} is missing or not a {kind.__name__}")
    return value


def _strings(data: dict[str, Any], name: str, where: str) -> list[str]:
    values = _field(data, name, list, where)
    if not all(isinstance(v, str) for v in values):
        raise ProtocolError(f"{where}: field {name!r} must be a list of strings")
    return [str(v) for v in values]


class ExportApi:
    """The discovery calls, over one HTTP client; transient failures are retried (driver.drive).

    Until the server has answered once, connection refused is tried only briefly, so a mistyped
    --server fails fast; after that, an outage is waited out as for any other request.
    """

    def __init__(
        self, client: httpx.Client, options: ClientOptions, on_outage: OutageCallback | None = None
    ) -> None:
        self.client = client
        self.options = options
        self.on_outage = on_outage
        self.answered = False  # until the server has answered once, an unreachable one fails fast

    def _get(self, path: str) -> Reply:
        """GET `path` and read its (bounded) body; a 2xx or a 404, else ServerUnreachableError."""
        where = f"GET {redact_url(self.options.url(path))}"
        reply = drive(
            self.client, self.options, path, _Metadata(where),
            quick_connect=not self.answered, on_outage=self.on_outage,
        )  # fmt: skip
        self.answered = True
        return reply

    def list_exports(self) -> list[str]:
        """The server's export ids."""
        response = self._get("/api/export")
        return _strings(_data(response), "export_ids", "GET /api/export")

    def download_ids(self, export_id: str) -> list[str]:
        """The export's download ids, in the server's order; UsageError for an unknown export."""
        path = f"/api/export/{quote(export_id, safe='')}"
        response = self._get(path)
        if response.status == 404:
            known = self.list_exports()
            raise UsageError(
                f"export {export_id!r} not found on {self.options.base_url}; "
                f"it has: {', '.join(known) or 'none'}"
            )
        return _strings(_data(response), "download_ids", f"GET {path}")

    def download_info(self, export_id: str, download_id: str) -> RemoteFile:
        """One download as a file to fetch, its metadata checked: rows is a non-negative integer,
        lists are strings."""
        path = f"/api/export/{quote(export_id, safe='')}/{quote(download_id, safe='')}"
        response = self._get(path)
        if response.status == 404:
            raise DownloadGoneError(
                f"download {download_id} of export {export_id!r} is gone (HTTP 404 for {path})"
            )
        data = _data(response)
        where = f"GET {path}"
        rows = _field(data, "rows", int, where)
        if rows < 0:
            raise ProtocolError(f"{where}: field 'rows' is negative ({rows})")
        _strings(data, "event_types", where)
        _strings(data, "patients", where)
        return download_file(export_id, download_id, rows, json.dumps(data, sort_keys=True))


def download_file(export_id: str, download_id: str, rows: int, metadata: str) -> RemoteFile:
    """A download of the export API as a file to fetch: a CSV body at its data path."""
    return RemoteFile(
        export_id=export_id,
        id=download_id,
        label=f"download {download_id}",
        url=f"/api/export/{quote(export_id, safe='')}/{quote(download_id, safe='')}/data",
        rows=rows,
        format=CSV,
        metadata=metadata,
    )


@dataclass(frozen=True)
class ExportApiSource:
    """One export's downloads, as the export API lists and describes them."""

    api: ExportApi
    export_id: str

    def files(self) -> list[RemoteFile]:
        """The export's downloads with their metadata, in the server's order; UsageError for an
        unknown export, DownloadGoneError for a listed download that is gone."""
        ids = self.api.download_ids(self.export_id)
        return [self.api.download_info(self.export_id, d) for d in ids]

    @property
    def notes(self) -> tuple[str, ...]:
        """Nothing: the export API says all it has to say in its metadata."""
        return ()

    def succeeded(self) -> None:
        """Nothing to release: the export API's exports outlive a run."""
