"""Stream one download into a parser, surviving dropped connections without losing or repeating a row.

A body cut off mid-stream is resumed with `Range: bytes=N-` and `If-Range` when the server
offered ranges (`Accept-Ranges: bytes` and an `ETag`) and answers 206 from exactly byte N: the
parser simply goes on with the next byte, wherever the cut fell (mid-line, mid-quoted-field,
between CR and LF). Otherwise the download starts again from byte 0 with a fresh parser, and the
partial tally is thrown away.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from export_tally.core.errors import (
    CsvFormatError,
    DownloadGoneError,
    ProtocolError,
    ServerUnreachableError,
)
from export_tally.transport.client import ClientOptions, fail_unless_transient, get_stream, shown
from export_tally.transport.retry import RetryBudget, describe, retry_after_seconds

if TYPE_CHECKING:
    from export_tally.core.aggregation import Aggregator, BodyResult
    from export_tally.transport.api import DownloadInfo

CHUNK_BYTES = 256 * 1024
CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")

ProgressCallback = Callable[[int], None]


@dataclass(frozen=True)
class DownloadResult:
    """What one download contributed: its parse result and how hard it was to get."""

    download_id: str
    result: BodyResult[Any]
    bytes: int
    attempts: int
    resumes: int = 0  # attempts that continued where a cut-off body stopped
    restarts: int = 0  # times the partial count was thrown away and the body started again
    restored: bool = False  # taken from a checkpoint, not downloaded in this run
    parts: int = 1  # byte ranges it was counted in (see split.py)


class _Restart(Exception):
    """Internal: the server will not continue where we stopped; start again from byte 0."""


class _Stream:
    """One download's state across attempts: the parser, the bytes fed to it, the resume token."""

    def __init__(
        self, info: DownloadInfo, aggregation: Aggregator[Any], report: ProgressCallback | None
    ) -> None:
        self.info = info
        self.aggregation = aggregation
        self.report = report
        self.etag: str | None = None
        self.reported = 0
        self.resumes = 0
        self.restarts = -1  # the first reset is the start, not a restart
        self.reset()

    def reset(self) -> None:
        """Throw away everything counted so far (and take it back from the progress shown)."""
        self.parser = self.aggregation.new_parser()
        self.offset = 0
        self.restarts += 1
        self._report()
        self.resumable = False

    def _report(self) -> None:
        rows = self.parser.rows
        if self.report is not None and rows != self.reported:
            self.report(rows - self.reported)
        self.reported = rows

    def feed(self, chunk: bytes) -> None:
        try:
            self.parser.feed(chunk)
        except CsvFormatError as exc:
            raise CsvFormatError(f"download {self.info.id}: {exc}") from exc
        self.offset += len(chunk)
        self._report()

    def consume(self, response: httpx.Response) -> None:
        """Feed the body in blocks of about CHUNK_BYTES; on a cut, what did arrive is fed too.

        Every byte received is kept, so a resume asks for exactly the first byte not yet seen.
        """
        buffer = bytearray()
        try:
            for piece in response.iter_raw():
                buffer += piece
                if len(buffer) >= CHUNK_BYTES:
                    self.feed(bytes(buffer))
                    buffer.clear()
        finally:
            if buffer:
                self.feed(bytes(buffer))

    def request_headers(self) -> dict[str, str]:
        if self.offset and self.resumable and self.etag:
            return {"Range": f"bytes={self.offset}-", "If-Range": self.etag}
        return {}

    def accept(self, response: httpx.Response) -> None:
        """Check a successful response against where we are; _Restart when it cannot continue."""
        if response.status_code == 206 and self.offset:
            match = CONTENT_RANGE.fullmatch(response.headers.get("content-range", ""))
            if not match or int(match.group(1)) != self.offset:
                raise _Restart
            self.resumes += 1
            return
        if response.status_code != 200:
            raise ProtocolError(f"download {self.info.id}: unexpected HTTP {response.status_code}")
        if self.offset:
            self.reset()  # the server sent the whole body again (If-Range mismatch, no ranges)
        content_type = response.headers.get("content-type", "").lower()
        if "html" in content_type or "json" in content_type:
            raise ProtocolError(
                f"download {self.info.id} answered {content_type.split(';')[0]} instead of CSV"
            )
        self.etag = response.headers.get("etag")
        self.resumable = response.headers.get("accept-ranges", "").lower() == "bytes" and bool(
            self.etag
        )


def count_download(
    client: httpx.Client,
    options: ClientOptions,
    info: DownloadInfo,
    aggregation: Aggregator[Any],
    report: ProgressCallback | None = None,
) -> DownloadResult:
    """Stream and count one download, retrying transient failures per `options.policy`.

    Raises ServerUnreachableError when retries do not cure a failure, DownloadGoneError on a 404,
    ProtocolError/CsvFormatError when the body is not the CSV promised, including a row count
    that differs from the metadata's twice in a row.
    """
    url = options.url(info.data_path())
    where = shown(url)
    stream = _Stream(info, aggregation, report)
    budget = RetryBudget(options.policy)
    integrity_retried = False
    while True:
        try:
            with get_stream(client, url, stream.request_headers()) as response:
                status = response.status_code
                if status in (200, 206):
                    stream.accept(response)
                    stream.consume(response)
                else:
                    check_status(where, info, status)
                    if not budget.record_failure(stream.offset):
                        raise ServerUnreachableError(
                            f"GET {where} failed: HTTP {status}, {budget.attempts} attempts"
                        )
                    budget.wait(retry_after_seconds(response))
                    continue
        except _Restart:
            stream.reset()
            continue
        except httpx.TransportError as exc:
            reached = stream.offset
            if not stream.resumable:
                stream.reset()
            if not budget.record_failure(reached):
                raise ServerUnreachableError(
                    f"GET {where} failed after {budget.attempts} attempts: {describe(exc)}"
                ) from exc
            budget.wait()
            continue

        try:
            result = stream.parser.finish()
        except CsvFormatError as exc:
            raise CsvFormatError(f"download {info.id}: {exc}") from exc
        if result.rows == info.rows:
            return DownloadResult(
                info.id, result, stream.offset, budget.attempts + 1, stream.resumes, stream.restarts
            )
        if integrity_retried:
            raise ProtocolError(
                f"download {info.id}: counted {result.rows} rows but the metadata declares "
                f"{info.rows}, twice"
            )
        integrity_retried = True
        stream.reset()


def check_status(url: str, info: DownloadInfo, status: int) -> None:
    """Raise for a status of a body request that no retry can cure; return for a transient one."""
    if status == 404:
        raise DownloadGoneError(
            f"download {info.id} of export {info.export_id!r} is gone (HTTP 404)"
        )
    if status == 416:
        raise ProtocolError(f"GET {url}: the server refused to resume (HTTP 416)")
    fail_unless_transient(f"GET {url}", status)
