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

from export_tally.core.errors import CsvFormatError, ProtocolError, ServerUnreachableError
from export_tally.core.split import ByteRange, PartCutter
from export_tally.transport.client import ClientOptions, get_stream, shown
from export_tally.transport.fetch import CONTENT_RANGE, ProgressCallback, check_status
from export_tally.transport.retry import RetryBudget, describe, retry_after_seconds

if TYPE_CHECKING:
    from export_tally.core.aggregation import Aggregator, BodyResult
    from export_tally.transport.api import DownloadInfo

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


@dataclass(frozen=True)
class PartResult:
    task: PartTask
    result: BodyResult[Any]
    saw_quote: bool
    attempts: int


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


def count_part(
    client: httpx.Client,
    options: ClientOptions,
    task: PartTask,
    aggregation: Aggregator[Any],
    report: ProgressCallback | None = None,
) -> PartResult:
    """Count the records of one part, resuming at the next unread byte after any cut."""
    info = task.info
    url = options.url(info.data_path())
    where = shown(url)
    label = f"download {info.id} part {task.index + 1}/{task.count}"
    cutter = PartCutter(task.part)
    parser = aggregation.new_parser()
    parser.feed(task.splittable.header)
    budget = RetryBudget(options.policy)
    reported = 0
    finished = False
    while not (finished or cutter.done):
        headers = {"Range": f"bytes={cutter.offset}-", "If-Range": task.splittable.etag}
        try:
            with get_stream(client, url, headers) as response:
                status = response.status_code
                if status == 206:
                    match = CONTENT_RANGE.fullmatch(response.headers.get("content-range", ""))
                    if not match or int(match.group(1)) != cutter.offset:
                        raise ProtocolError(f"{label}: the server sent another range than asked")
                    for piece in response.iter_raw():
                        chunk = cutter.take(piece)
                        if cutter.saw_quote:
                            # The download will be counted whole; this part's count is moot.
                            return PartResult(
                                task, _nothing(aggregation), True, budget.attempts + 1
                            )
                        parser.feed(chunk)
                        if report is not None and parser.rows != reported:
                            report(parser.rows - reported)
                            reported = parser.rows
                        if cutter.done:
                            break
                    else:
                        finished = True  # the body ended: the last part's last record is done
                    continue
                if status == 200:
                    raise ProtocolError(f"{label}: the download changed during the run (ETag)")
                check_status(where, info, status)
                retry_after = retry_after_seconds(response)
        except CsvFormatError as exc:
            raise CsvFormatError(f"{label}: {exc}") from exc
        except httpx.TransportError as exc:
            if not budget.record_failure(cutter.offset - cutter.first_offset):
                raise ServerUnreachableError(
                    f"GET {where} failed after {budget.attempts} attempts: {describe(exc)}"
                ) from exc
            budget.wait()
            continue
        if not budget.record_failure():
            raise ServerUnreachableError(
                f"GET {where} failed: HTTP {status}, {budget.attempts} attempts"
            )
        budget.wait(retry_after)
    try:
        result = parser.finish()
    except CsvFormatError as exc:
        raise CsvFormatError(f"{label}: {exc}") from exc
    return PartResult(task, result, cutter.saw_quote, budget.attempts + 1)


def _nothing(aggregation: Aggregator[Any]) -> BodyResult[Any]:
    """An empty result, for a part whose count is thrown away."""
    return aggregation.new_parser().finish()
