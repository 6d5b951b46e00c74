"""Fetch one file whole into a parser, surviving dropped connections without losing or repeating
a row.

A body cut off mid-stream is resumed with `Range: bytes=N-` and `If-Range` when the server
offered ranges (`Accept-Ranges: bytes` and an `ETag`) and answers 206 from exactly byte N: the
parser simply goes on with the next byte, wherever the cut fell (mid-line, mid-quoted-field,
between CR and LF). Otherwise the download starts again from byte 0 with a fresh parser, and the
partial tally is thrown away. Whether the rows counted are the rows the server declared is for
the caller to judge (scheduling/results.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from export_tally.core.aggregation import NDJSON
from export_tally.errors import CsvFormatError, ProtocolError
from export_tally.transport.driver import BodyExchange, drive
from export_tally.transport.raw_body import iter_body
from export_tally.transport.shared_terms import CONTENT_RANGE, FetchOutcome

if TYPE_CHECKING:
    import httpx

    from export_tally.core.aggregation import Aggregator
    from export_tally.transport.client import ClientOptions
    from export_tally.transport.retry import OutageCallback
    from export_tally.transport.shared_terms import ProgressCallback, RemoteFile

CHUNK_BYTES = 64 * 1024  # what a read asks for (httpcore's own reads are 64 KiB too)
# What an NDJSON file may be served as (the FHIR Bulk Data guide names both); any other JSON or
# HTML is an error page, not the file. Its Accept header asks for the FHIR one.
NDJSON_TYPES = ("application/fhir+ndjson", "application/ndjson", "application/x-ndjson")


class _Restart(Exception):
    """Internal: the server will not continue where we stopped; start again from byte 0."""


class _Stream(BodyExchange[FetchOutcome]):
    """One file's state across attempts: the parser, the bytes fed to it, the resume token."""

    def __init__(
        self, file: RemoteFile, aggregation: Aggregator[Any], report: ProgressCallback | None
    ) -> None:
        super().__init__(file, report)
        self.aggregation = aggregation
        self.etag: str | None = None
        self.resumes = 0
        self.restarts = -1  # the first reset is the start, not a restart
        self.reset()

    def reset(self) -> None:
        """Throw away everything counted so far (and take it back from the progress shown)."""
        self.parser = self.aggregation.new_parser(self.file.format)
        self.offset = 0
        self.restarts += 1
        self.report_rows(0)
        self.resumable = False

    def feed(self, chunk: bytes) -> None:
        try:
            self.parser.feed(chunk)
        except CsvFormatError:
            raise  # named by `fetch_whole`, which keeps its class
        except ProtocolError as exc:
            raise ProtocolError(f"{self.file.label}: {exc}") from exc
        self.offset += len(chunk)
        self.report_rows(self.parser.rows)

    def headers(self) -> dict[str, str]:
        headers = {"Accept": NDJSON_TYPES[0]} if self.file.format == NDJSON else {}
        if self.offset and self.resumable and self.etag:
            headers.update({"Range": f"bytes={self.offset}-", "If-Range": self.etag})
        return headers

    def progress(self) -> int:
        return self.offset

    def cut_off(self) -> None:
        if not self.resumable:
            self.reset()

    def read(self, response: httpx.Response, attempt: int) -> FetchOutcome | None:
        try:
            self.check_start(response)
        except _Restart:
            self.reset()
            return None
        self.consume(response)
        return self.finish(attempt)

    def check_start(self, response: httpx.Response) -> None:
        """Check a successful response against where we are; _Restart when it cannot continue."""
        if response.status_code == 206 and self.offset:
            match = CONTENT_RANGE.fullmatch(response.headers.get("content-range", ""))
            if not match or int(match.group(1)) != self.offset:
                raise _Restart
            self.resumes += 1
            return
        if response.status_code != 200:
            raise ProtocolError(f"{self.file.label}: unexpected HTTP {response.status_code}")
        if self.offset:
            self.reset()  # the server sent the whole body again (If-Range mismatch, no ranges)
        content_type = response.headers.get("content-type", "").lower()
        if self.file.format == NDJSON and content_type.split(";")[0].strip() in NDJSON_TYPES:
            pass
        elif "html" in content_type or "json" in content_type:
            raise ProtocolError(
                f"{self.file.label} answered {content_type.split(';')[0]} instead of "
                f"{self.file.format.upper()}"
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
        is kept, so a resume asks for exactly the first byte not yet seen. The pieces come
        straight from the connection when they can (raw_body.py: h11's copies cost a sixth of
        a worker's CPU).
        """
        buffer = bytearray()
        try:
            for piece in iter_body(response, CHUNK_BYTES):
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

    def finish(self, attempt: int) -> FetchOutcome:
        """The outcome once the whole body is in."""
        try:
            result = self.parser.finish()
        except CsvFormatError:
            raise
        except ProtocolError as exc:  # an NDJSON parser's: the file named as for CSV
            raise ProtocolError(f"{self.file.label}: {exc}") from exc
        return FetchOutcome(result, self.offset, attempt - 1, self.resumes, self.restarts)


def fetch_whole(
    client: httpx.Client,
    options: ClientOptions,
    file: RemoteFile,
    aggregation: Aggregator[Any],
    report: ProgressCallback | None = None,
    on_outage: OutageCallback | None = None,
) -> FetchOutcome:
    """Stream one file whole into a parser for its format, retrying transient failures per
    `options.policy`; rows go to `report` as they are counted.

    Raises ServerUnreachableError when retries do not cure a failure, DownloadGoneError on a 404,
    ProtocolError/CsvFormatError when the body is not the CSV (or NDJSON) promised. The rows
    counted are not checked against the declared ones here: scheduling does that (and counts
    once more).
    """
    stream = _Stream(file, aggregation, report)
    try:
        return drive(client, options, file.url, stream, on_outage=on_outage)
    except CsvFormatError as exc:  # from the parser, in `feed` or `finish`
        raise CsvFormatError(f"{file.label}: {exc}") from exc
