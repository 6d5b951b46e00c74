"""Stream one download into a parser, surviving dropped connections without losing or repeating a row.

A body cut off mid-stream is resumed with `Range: bytes=N-` and `If-Range` when the server
offered ranges (`Accept-Ranges: bytes` and an `ETag`) and answers 206 from exactly byte N: the
parser simply goes on with the next byte, wherever the cut fell (mid-line, mid-quoted-field,
between CR and LF). Otherwise the download starts again from byte 0 with a fresh parser, and the
partial tally is thrown away.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from export_tally.errors import CsvFormatError, ProtocolError
from export_tally.transport.driver import CONTENT_RANGE, BodyExchange, drive

if TYPE_CHECKING:
    import httpx

    from export_tally.core.aggregation import Aggregator, BodyResult
    from export_tally.transport.api import DownloadInfo
    from export_tally.transport.client import ClientOptions
    from export_tally.transport.driver import OutageCallback, ProgressCallback

CHUNK_BYTES = 64 * 1024  # what httpcore reads at a time


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
    restored_parts: int = 0  # of those, ranges taken from checkpoints (no attempt in this run)

    @property
    def retries(self) -> int:
        """Failed attempts in this run: each part fetched in it succeeds once, after its retries."""
        if self.restored:
            return 0
        return self.attempts - (self.parts - self.restored_parts)


class _Restart(Exception):
    """Internal: the server will not continue where we stopped; start again from byte 0."""


class _Stream(BodyExchange[DownloadResult]):
    """One download's state across attempts: the parser, the bytes fed to it, the resume token."""

    def __init__(
        self, info: DownloadInfo, aggregation: Aggregator[Any], report: ProgressCallback | None
    ) -> None:
        super().__init__(info, report)
        self.aggregation = aggregation
        self.etag: str | None = None
        self.resumes = 0
        self.restarts = -1  # the first reset is the start, not a restart
        self.integrity_retried = False
        self.reset()

    def reset(self) -> None:
        """Throw away everything counted so far (and take it back from the progress shown)."""
        self.parser = self.aggregation.new_parser()
        self.offset = 0
        self.restarts += 1
        self.report_rows(0)
        self.resumable = False

    def feed(self, chunk: bytes) -> None:
        self.parser.feed(chunk)
        self.offset += len(chunk)
        self.report_rows(self.parser.rows)

    def headers(self) -> dict[str, str]:
        if self.offset and self.resumable and self.etag:
            return {"Range": f"bytes={self.offset}-", "If-Range": self.etag}
        return {}

    def progress(self) -> int:
        return self.offset

    def broke_off(self) -> None:
        if not self.resumable:
            self.reset()

    def take(self, response: httpx.Response, attempts: int) -> DownloadResult | None:
        try:
            self.accept(response)
        except _Restart:
            self.reset()
            return None
        self.consume(response)
        return self.finish(attempts)

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

    def consume(self, response: httpx.Response) -> None:
        """Feed the body as it arrives, small pieces gathered to CHUNK_BYTES; on a cut, what did
        arrive is fed too.

        A piece of CHUNK_BYTES or more is fed as it is. Gathering pieces into larger blocks
        cost 15% more CPU per row: glibc's malloc maps every block of 128 KiB or more fresh
        from the kernel, and each of its pages faults when first written. Every byte received
        is kept, so a resume asks for exactly the first byte not yet seen.
        """
        buffer = bytearray()
        try:
            for piece in response.iter_raw():
                if not buffer and len(piece) >= CHUNK_BYTES:
                    self.feed(piece)
                    continue
                buffer += piece
                if len(buffer) >= CHUNK_BYTES:
                    self.feed(bytes(buffer))
                    buffer.clear()
        finally:
            if buffer:
                self.feed(bytes(buffer))

    def finish(self, attempts: int) -> DownloadResult | None:
        """The result once the whole body is in; None to count it again from scratch, once,
        when the rows differ from the metadata's."""
        info = self.info
        result = self.parser.finish()
        if result.rows == info.rows:
            return DownloadResult(
                info.id, result, self.offset, attempts, self.resumes, self.restarts
            )
        if self.integrity_retried:
            raise ProtocolError(
                f"download {info.id}: counted {result.rows} rows but the metadata declares "
                f"{info.rows}, twice"
            )
        self.integrity_retried = True
        self.reset()
        return None


def count_download(
    client: httpx.Client,
    options: ClientOptions,
    info: DownloadInfo,
    aggregation: Aggregator[Any],
    report: ProgressCallback | None = None,
    on_outage: OutageCallback | None = None,
) -> DownloadResult:
    """Stream and count one download, retrying transient failures per `options.policy`.

    Raises ServerUnreachableError when retries do not cure a failure, DownloadGoneError on a 404,
    ProtocolError/CsvFormatError when the body is not the CSV promised, including a row count
    that differs from the metadata's twice in a row.
    """
    stream = _Stream(info, aggregation, report)
    try:
        return drive(client, options, info.data_path(), stream, on_outage=on_outage)
    except CsvFormatError as exc:  # from the parser, in `feed` or `finish`
        raise CsvFormatError(f"download {info.id}: {exc}") from exc
