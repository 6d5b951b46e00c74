"""Fetch one byte range of a file into a parser (see core/csv/split.py), and find out whether a file
can be split.

A file can be split when the server serves ranges of it (a 206 to a first-bytes request),
names its version (`ETag`, sent back as `If-Range` so every part reads the same bytes) and
declares its size (in `Content-Range`). The client reads the header line first and hands it to
every range, so each knows the column order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from export_tally.core.aggregation import CSV
from export_tally.core.csv.split import PartCutter
from export_tally.errors import CsvFormatError, ProtocolError
from export_tally.transport.driver import BodyExchange, drive, get_stream
from export_tally.transport.raw_body import iter_body
from export_tally.transport.shared_terms import CONTENT_RANGE, FetchOutcome

if TYPE_CHECKING:
    from export_tally.core.aggregation import Aggregator
    from export_tally.core.csv.split import ByteRange
    from export_tally.transport.client import ClientOptions
    from export_tally.transport.retry import OutageCallback
    from export_tally.transport.shared_terms import ProgressCallback, RemoteFile

# A header line longer than this is not the export's CSV header; such a file is not split.
MAX_HEADER_BYTES = 64 * 1024


@dataclass(frozen=True)
class Splittable:
    """What splitting a download needs: its header line, its size and its version."""

    header: bytes
    size: int
    etag: str


def probe_splittable(
    client: httpx.Client, options: ClientOptions, file: RemoteFile
) -> Splittable | None:
    """Ask for the first bytes of a file: a 206 with its total size and an ETag means it can
    be split, and holds the header line. None when it cannot be split (or on any doubt), and
    for a file that is not CSV: only CSV's records are cut at byte boundaries (core/csv/split)."""
    if file.format != CSV:
        return None
    headers = {"Range": f"bytes=0-{MAX_HEADER_BYTES - 1}"}
    try:
        with get_stream(client, options.url(file.url), headers) as response:
            etag = response.headers.get("etag")
            match = CONTENT_RANGE.fullmatch(response.headers.get("content-range", ""))
            if response.status_code != 206 or not etag or not match or match.group(3) == "*":
                return None  # closed without reading the body: nothing more is transferred
            head = response.read()
    except httpx.HTTPError:
        return None  # fetching the file whole will retry and report properly
    newline = head.find(b"\n")
    if match.group(1) != "0" or newline < 0 or b'"' in head[:newline]:
        return None
    return Splittable(head[: newline + 1], int(match.group(3)), etag)


class _Range(BodyExchange[FetchOutcome]):
    """One range's state across attempts: the cutter (where to resume) and the parser."""

    def __init__(
        self,
        file: RemoteFile,
        splittable: Splittable,
        byte_range: ByteRange,
        label: str,
        aggregation: Aggregator[Any],
        report: ProgressCallback | None,
    ) -> None:
        super().__init__(file, report)
        self.splittable = splittable
        self.label = label
        self.aggregation = aggregation
        self.cutter = PartCutter(byte_range)
        self.parser = aggregation.new_parser(file.format)
        self.parser.feed(splittable.header)

    def headers(self) -> dict[str, str]:
        return {"Range": f"bytes={self.cutter.offset}-", "If-Range": self.splittable.etag}

    def progress(self) -> int:
        return self.cutter.offset - self.cutter.first_offset

    def read(self, response: httpx.Response, attempt: int) -> FetchOutcome:
        if response.status_code == 200:
            raise ProtocolError(f"{self.label}: the download changed during the run (ETag)")
        match = CONTENT_RANGE.fullmatch(response.headers.get("content-range", ""))
        if not match or int(match.group(1)) != self.cutter.offset:
            raise ProtocolError(f"{self.label}: the server sent another range than asked")
        return self.consume(response, attempt)

    def consume(self, response: httpx.Response, attempt: int) -> FetchOutcome:
        """Count the range's records from this answer on; the outcome once the last one is in."""
        cutter, parser = self.cutter, self.parser
        for piece in iter_body(response):
            chunk = cutter.take(piece)
            if cutter.saw_quote:
                # The file will be counted whole; this range's count is moot.
                moot = self.aggregation.new_parser(self.file.format).finish()
                return FetchOutcome(moot, self.progress(), attempt - 1, saw_quote=True)
            parser.feed(chunk)
            self.report_rows(parser.rows)
            if cutter.done:
                break
        # The range's last record is complete, or the body ended (the last range's last record).
        return FetchOutcome(parser.finish(), self.progress(), attempt - 1)


def fetch_range(
    client: httpx.Client,
    options: ClientOptions,
    file: RemoteFile,
    splittable: Splittable,
    byte_range: ByteRange,
    label: str,
    aggregation: Aggregator[Any],
    report: ProgressCallback | None = None,
    on_outage: OutageCallback | None = None,
) -> FetchOutcome:
    """Count the records of one byte range of `file` (as `splittable` describes it), resuming at
    the next unread byte after any cut; messages name it `label`.

    Raises as fetch.fetch_whole does; ProtocolError when the server sends another range than
    asked, or the whole body (its ETag changed).
    """
    # The parser reads the header when the range is made, the body in `read`: both name it.
    try:
        exchange = _Range(file, splittable, byte_range, label, aggregation, report)
        return drive(client, options, file.url, exchange, on_outage=on_outage)
    except CsvFormatError as exc:
        raise CsvFormatError(f"{label}: {exc}") from exc
