"""A download's Observation file, planned: its pieces, its exact count and length in bytes.

A job plans each file once, reading the download's CSV (from the cache, or as it is generated
into it: planning is what drives a cold export's generation). The CSV rows are cut at line ends
into pieces of about PIECE_BYTES; each piece becomes a run of NDJSON bytes whose offset and
length the plan records. So a file's length is known before it is served, and any byte range of
it is made from the pieces it overlaps. A piece that keeps every row has its length computed
from its CSV (`ndjson_length`, a few `bytes.count`s); one that keeps some rows (`_since` falls
inside it, or `patient` leaves some out) is made once in the converter processes and measured.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from export_server.bodies import Bodies
from export_server.dataset import Download, downloads_of
from export_server.fhir_convert import Converter, PieceJob
from export_server.fhir_resources import id_prefix, ndjson_length, time_key
from export_server.generate import HEADER

PIECE_BYTES = 128 * 1024


@dataclass(frozen=True)
class Selection:
    """Which Observations a job keeps: rows later than `since_key` (a `time_key`; None: all), of
    the patients in `keep` (None: all)."""

    since_key: bytes | None = None
    keep: frozenset[bytes] | None = None


@dataclass(frozen=True)
class Piece:
    """CSV bytes [csv_start, csv_stop) of the body, made into NDJSON bytes [start, start + length)
    of the file by `job`."""

    csv_start: int
    csv_stop: int
    start: int
    length: int
    job: PieceJob


@dataclass
class ObservationFile:
    """One download's Observations: the pieces in order, `count` resources, `size` bytes."""

    download: Download
    pieces: list[Piece] = field(default_factory=list)
    count: int = 0
    size: int = 0

    def add(self, piece: Piece, count: int) -> None:
        self.pieces.append(piece)
        self.count += count
        self.size += piece.length

    def overlapping(self, start: int, stop: int) -> list[Piece]:
        """The pieces that hold some of the file's bytes [start, stop)."""
        first = bisect_right([piece.start for piece in self.pieces], start) - 1
        return [piece for piece in self.pieces[max(first, 0) :] if piece.start < stop]


def download_index(download: Download) -> int:
    return downloads_of(download.export.export_id).index(download)


async def _pieces(bodies: Bodies, download: Download) -> AsyncIterator[tuple[int, bytes]]:
    """(offset in the body, whole rows) of about PIECE_BYTES each, the header left out."""
    offset = len(HEADER)
    pending = b""
    async for chunk in bodies.stream(download, offset):
        pending = pending + chunk if pending else chunk
        taken = 0
        while len(pending) - taken >= PIECE_BYTES:
            end = pending.rfind(b"\n", taken, taken + PIECE_BYTES) + 1
            end = end or pending.find(b"\n", taken + PIECE_BYTES) + 1
            if not end:
                break  # one row longer than a piece: wait for its end
            yield offset, pending[taken:end]
            offset += end - taken
            taken = end
        pending = pending[taken:]
    if pending:
        if not pending.endswith(b"\n"):
            raise ValueError(f"the body of {download.id} does not end with a line end")
        yield offset, pending


async def plan_file(
    bodies: Bodies, converter: Converter, download: Download, selection: Selection,
    progress: Callable[[int], None],
) -> ObservationFile:  # fmt: skip
    """The download's Observation file as `selection` keeps it; `progress(n)` is told each time
    n more bytes of CSV have been read. Raises GenerationError if the body cannot be had."""
    prefix = id_prefix(download.export.export_id, download_index(download))
    planned = ObservationFile(download)
    keep = selection.keep
    patients = frozenset(p.encode() for p in download.patients)
    # Every row's time is before the download's end_time: a `_since` at or after it keeps none.
    ends = download.end_time.strftime("%Y-%m-%dT%H:%M:%S.%f").encode()
    since_all = selection.since_key is not None and ends <= selection.since_key
    if since_all or (keep is not None and not keep & patients):
        progress(bodies.size(download) - len(HEADER))
        return planned
    every_patient = keep is None or patients <= keep
    first_row = 1
    async for offset, rows in _pieces(bodies, download):
        progress(len(rows))
        rows_here = rows.count(b"\n")
        job = PieceJob(prefix, first_row, None if every_patient else keep)
        first_row += rows_here
        since = selection.since_key
        if since is not None:
            last_line = rows[rows.rfind(b"\n", 0, -1) + 1 :]
            if time_key(last_line.split(b",", 2)[1]) <= since:
                continue
            if time_key(rows.split(b",", 2)[1]) <= since:
                job = PieceJob(prefix, job.first_row, job.keep, since)
        if job.keep is None and job.since_key is None:
            length = ndjson_length(rows, prefix, download.export.event_types)
            count = rows_here
        else:
            length, count = await converter.measure(job, rows)
        if count:
            piece = Piece(offset, offset + len(rows), planned.size, length, job)
            planned.add(piece, count)
    return planned
