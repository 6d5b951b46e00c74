"""The words every transport module shares: a file to fetch, what fetching it gave, a source.

This module imports nothing else of `transport/`, so the modules that use these words (the
retrying loop, the client, the export API, the fetches) never import round. It is also the one
place a URL is redacted for messages.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from export_tally.core.aggregation import BodyResult

MAX_REDIRECTS = 5
CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")

ProgressCallback = Callable[[int], None]  # rows counted since the last call (negative: taken back)


def redact_url(url: str) -> str:
    """A URL safe to print: user information removed."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


@dataclass(frozen=True)
class RemoteFile:
    """One file a source says to fetch, and what the server declared about it.

    `url` is relative to the server's base URL (a path), or absolute (a FHIR manifest's); `rows`
    is what the server declared the body holds (CSV rows; for NDJSON, resources), checked against
    what is counted, or None when it declared nothing (a FHIR manifest's `count` is optional);
    `size` is its length in bytes when declared. `metadata` is the server's exact description of the file
    (JSON): with `export_id` and `id` it makes `key`, which names this file's checkpoints, so a
    file the server describes differently is never taken for it.
    """

    export_id: str
    id: str
    label: str  # how messages name it: `download d1`
    url: str
    rows: int | None
    format: str  # which parser reads it: "csv" or "ndjson" (see core/aggregation.py)
    metadata: str = field(repr=False)
    size: int | None = None

    @property
    def key(self) -> tuple[str, ...]:
        return (self.export_id, self.id, self.metadata)


@dataclass(frozen=True)
class FetchOutcome:
    """What fetching a file (whole, or one byte range of it) gave, and how hard it was to get.

    `bytes` is how many bytes were fed to the parser in the end; `retries` counts the failed
    attempts before the one that succeeded; `resumes` the attempts that continued where a cut-off
    body stopped, `restarts` the times the partial count was thrown away and the body started
    again. `saw_quote` (a byte range only): a quote was seen, so a record boundary may hide in a
    quoted field and this range's count is moot.
    """

    result: BodyResult[Any]
    bytes: int
    retries: int
    resumes: int = 0
    restarts: int = 0
    saw_quote: bool = False


class Source(Protocol):
    """What a protocol gives the run: the files to fetch (the export API's downloads, or a FHIR
    Bulk Data export's output files), and what it does once they are all counted.

    Fetching one, whole or by byte range, is the same for every source: `fetch.fetch_whole`,
    `fetch_range.fetch_range`.
    """

    def files(self) -> list[RemoteFile]:
        """The files, in the server's order, each with what the server declared about it."""
        ...

    @property
    def notes(self) -> tuple[str, ...]:
        """What the server said about the export that a report should show (a FHIR export's
        error and deleted files, types not asked for); one line each, server text in them."""
        ...

    def succeeded(self) -> None:
        """Every file is counted and the answer is out: release what the server holds for the
        run (a FHIR export job), if anything."""
        ...


def declared_rows(files: list[RemoteFile]) -> int:
    """The rows the files declare, those that declare none left out."""
    return sum(file.rows for file in files if file.rows is not None)
