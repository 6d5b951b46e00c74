"""The NDJSON files of a job, as they go out: made from the CSV while they are sent, never cached.

An Observation file's bytes [start, stop) are made piece by piece (`fhir_index.Piece`) in the
converter processes, AHEAD pieces at a time, and passed on in order: one file keeps several
processes busy, and two files at once keep every core busy. With gzip each piece is compressed
where it is made (`fhir_gzip`). They go out in `faults.DroppedBody`, as the CSV bodies do: cut
off part-way when a fault says so or a piece cannot be made, and no more pieces made once the
client hangs up.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from typing import TypeVar

from export_server.bodies import Bodies
from export_server.errors import GenerationError
from export_server.fhir_convert import Converter, PieceJob
from export_server.fhir_gzip import HEADER, GzipFraming
from export_server.fhir_index import ObservationFile, Piece

log = logging.getLogger("export_server")

NDJSON = "application/fhir+ndjson"
# Pieces being made ahead of the one being sent (each about 1.7 MB of NDJSON).
AHEAD = 3
T = TypeVar("T")


async def _rows_of(
    chunks: AsyncGenerator[bytes, None], offset: int, pieces: list[Piece]
) -> AsyncGenerator[tuple[Piece, bytes], None]:
    """Each piece with its CSV rows, cut from `chunks`: the body's bytes from `offset` on.

    One read of the body for all the pieces (pieces nobody keeps are skipped over), so a body
    that is generated rather than read from the cache is generated once, not once a piece.
    """
    buffer = b""  # the body's bytes [offset, offset + len(buffer))
    for piece in pieces:
        while offset + len(buffer) < piece.csv_stop:
            chunk = await anext(chunks, None)
            if chunk is None:
                raise GenerationError("the CSV body ended before the pieces planned from it")
            done = max(0, min(piece.csv_start - offset, len(buffer)))  # bytes no piece needs
            buffer = buffer[done:] + chunk
            offset += done
        yield piece, buffer[piece.csv_start - offset : piece.csv_stop - offset]


async def _result(made: asyncio.Future[T]) -> T:
    """A piece's making; its failure (a converter process lost, or a bug) a GenerationError,
    which cuts this body off, not the server."""
    try:
        return await made
    except GenerationError:
        raise
    except Exception as exc:
        log.exception("an NDJSON piece could not be made")
        raise GenerationError(f"an NDJSON piece could not be made: {exc!r}") from exc


class ObservationSource:
    """Makes one planned Observation file's bytes from the CSV bodies."""

    def __init__(self, bodies: Bodies, converter: Converter, planned: ObservationFile) -> None:
        self.bodies = bodies
        self.converter = converter
        self.planned = planned

    async def _made(
        self, pieces: list[Piece], make: Callable[[PieceJob, bytes], Awaitable[T]]
    ) -> AsyncGenerator[tuple[Piece, T], None]:
        """(piece, make(its job, its rows)) in order, with up to AHEAD pieces being made at once."""
        if not pieces:
            return
        first, last = pieces[0].csv_start, pieces[-1].csv_stop
        pending: deque[tuple[Piece, asyncio.Future[T]]] = deque()
        try:
            body = self.bodies.stream(self.planned.download, first, last)
            async with aclosing(body) as chunks, aclosing(_rows_of(chunks, first, pieces)) as cut:
                async for piece, rows in cut:
                    pending.append((piece, asyncio.ensure_future(make(piece.job, rows))))
                    if len(pending) >= AHEAD:
                        done, made = pending.popleft()
                        yield done, await _result(made)
            while pending:
                done, made = pending.popleft()
                yield done, await _result(made)
        finally:
            for _, made in pending:
                made.cancel()

    async def span(self, start: int, stop: int) -> AsyncGenerator[bytes, None]:
        """Bytes [start, stop) of the file."""
        pieces = self.planned.overlapping(start, stop)
        async with aclosing(self._made(pieces, self.converter.render)) as made:
            async for piece, lines in made:
                if len(lines) != piece.length:
                    raise GenerationError(f"a piece made {len(lines)} bytes, not {piece.length}")
                low, high = max(start - piece.start, 0), min(stop - piece.start, piece.length)
                yield lines if (low, high) == (0, piece.length) else lines[low:high]

    async def gzipped(self) -> AsyncGenerator[bytes, None]:
        """The whole file, gzip-compressed."""

        framing = GzipFraming()  # takes the pieces in order: their CRCs are combined in order
        yield HEADER
        async with aclosing(
            self._made(self.planned.pieces, self.converter.render_compressed)
        ) as made:
            async for piece, compressed in made:
                if compressed.length != piece.length:
                    raise GenerationError(
                        f"a piece made {compressed.length} bytes, not {piece.length}"
                    )
                yield framing.add(compressed)
        yield framing.trailer()


async def bytes_span(data: bytes, start: int, stop: int) -> AsyncGenerator[bytes, None]:
    """Bytes [start, stop) of a file made whole in memory (Patient and error files)."""
    yield data[start:stop]


async def bytes_gzipped(data: bytes) -> AsyncGenerator[bytes, None]:
    yield gzip.compress(data, compresslevel=1, mtime=0)
