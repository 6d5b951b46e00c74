"""Count one byte range of a download (see split.py), and find out whether a download can be split.

A download can be split when the server serves ranges of it (a 206 to a first-bytes request),
names its version (`ETag`, sent back as `If-Range` so every part reads the same bytes) and
declares its size (in `Content-Range`). The client reads the header line first and hands it to every part, so each
part knows the column order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from export_tally.core.csv.split import ByteRange, PartCutter
from export_tally.errors import CsvFormatError, ProtocolError
from export_tally.transport.driver import CONTENT_RANGE, BodyExchange, drive, get_stream

if TYPE_CHECKING:
    from export_tally.core.aggregation import Aggregator, BodyResult
    from export_tally.transport.api import DownloadInfo
    from export_tally.transport.client import ClientOptions
    from export_tally.transport.driver import OutageCallback, ProgressCallback

# A header line longer than this is not the export's CSV header; such a download is not split.
MAX_HEADER_BYTES = 64 * 1024


@dataclass(frozen=True)
class Splittable:
    """What splitting a download needs: its header line, its size and its version."""

    header: bytes
    size: int
    etag: str


@dataclass(frozen=True)
class PartTask:
    info: DownloadInfo
    splittable: Splittable
    part: ByteRange
    index: int
    count: int

    @property
    def label(self) -> str:
        """How messages name this part: `download d1 part 2/4`."""
        return f"download {self.info.id} part {self.index + 1}/{self.count}"


@dataclass(frozen=True)
class PartResult:
    task: PartTask
    result: BodyResult[Any]
    saw_quote: bool
    attempts: int
    restored: bool = False  # taken from a checkpoint, not downloaded in this run


def probe_splittable(
    client: httpx.Client, options: ClientOptions, info: DownloadInfo
) -> Splittable | None:
    """Ask for the first bytes of a download: a 206 with its total size and an ETag means it can
    be split, and holds the header line. None when it cannot be split (or on any doubt)."""
    headers = {"Range": f"bytes=0-{MAX_HEADER_BYTES - 1}"}
    try:
        with get_stream(client, options.url(info.data_path()), headers) as response:
            etag = response.headers.get("etag")
            match = CONTENT_RANGE.fullmatch(response.headers.get("content-range", ""))
            if response.status_code != 206 or not etag or not match or match.group(3) == "*":
                return None  # closed without reading the body: nothing more is transferred
            head = response.read()
    except httpx.HTTPError:
        return None  # counting the download whole will retry and report properly
    newline = head.find(b"\n")
    if match.group(1) != "0" or newline < 0 or b'"' in head[:newline]:
        return None
    return Splittable(head[: newline + 1], int(match.group(3)), etag)


class _Part(BodyExchange[PartResult]):
    """One part's state across attempts: the cutter (where to resume) and the parser."""

    def __init__(
        self, task: PartTask, aggregation: Aggregator[Any], report: ProgressCallback | None
    ) -> None:
        super().__init__(task.info, report)
        self.task = task
        self.aggregation = aggregation
        self.cutter = PartCutter(task.part)
        self.parser = aggregation.new_parser()
        self.parser.feed(task.splittable.header)

    def headers(self) -> dict[str, str]:
        return {"Range": f"bytes={self.cutter.offset}-", "If-Range": self.task.splittable.etag}

    def progress(self) -> int:
        return self.cutter.offset - self.cutter.first_offset

    def take(self, response: httpx.Response, attempts: int) -> PartResult:
        if response.status_code == 200:
            raise ProtocolError(f"{self.task.label}: the download changed during the run (ETag)")
        match = CONTENT_RANGE.fullmatch(response.headers.get("content-range", ""))
        if not match or int(match.group(1)) != self.cutter.offset:
            raise ProtocolError(f"{self.task.label}: the server sent another range than asked")
        return self.consume(response, attempts)

    def consume(self, response: httpx.Response, attempts: int) -> PartResult:
        """Count the part's records from this answer on; the result once the last one is in."""
        cutter, parser = self.cutter, self.parser
        for piece in response.iter_raw():
            chunk = cutter.take(piece)
            if cutter.saw_quote:
                # The download will be counted whole; this part's count is moot.
                return PartResult(self.task, _nothing(self.aggregation), True, attempts)
            parser.feed(chunk)
            self.report_rows(parser.rows)
            if cutter.done:
                break
        # The part's last record is complete, or the body ended (the last part's last record).
        return PartResult(self.task, parser.finish(), saw_quote=False, attempts=attempts)


def count_part(
    client: httpx.Client,
    options: ClientOptions,
    task: PartTask,
    aggregation: Aggregator[Any],
    report: ProgressCallback | None = None,
    on_outage: OutageCallback | None = None,
) -> PartResult:
    """Count the records of one part, resuming at the next unread byte after any cut.

    Raises as count_download does; ProtocolError when the server sends another range than asked,
    or the whole body (its ETag changed).
    """
    # The parser reads the header when the part is made, the body in `take`: both name the part.
    try:
        part = _Part(task, aggregation, report)
        return drive(client, options, task.info.data_path(), part, on_outage=on_outage)
    except CsvFormatError as exc:
        raise CsvFormatError(f"{task.label}: {exc}") from exc


def _nothing(aggregation: Aggregator[Any]) -> BodyResult[Any]:
    """An empty result, for a part whose count is thrown away."""
    return aggregation.new_parser().finish()
