"""Cutting a body read once into the pieces a file is made of, whatever its chunking."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest

from export_server.errors import GenerationError
from export_server.fhir_convert import PieceJob
from export_server.fhir_files import _rows_of
from export_server.fhir_index import Piece

BODY = bytes(range(256)) * 40
JOB = PieceJob("x-", 1)
# Gaps between pieces are rows no piece keeps (a patient left out, or rows before _since).
PIECES = [Piece(10, 20, 0, 0, JOB), Piece(20, 500, 0, 0, JOB), Piece(900, 901, 0, 0, JOB),
          Piece(1000, 3000, 0, 0, JOB)]  # fmt: skip


async def chunks_of(size: int, stop: int = len(BODY)) -> AsyncGenerator[bytes, None]:
    for start in range(10, stop, size):
        yield BODY[start : min(start + size, stop)]


@pytest.mark.parametrize("size", [1, 7, 480, 5000])
def test_each_piece_gets_its_bytes(size: int) -> None:
    async def cut() -> list[bytes]:
        return [rows async for _, rows in _rows_of(chunks_of(size), 10, PIECES)]

    assert asyncio.run(cut()) == [BODY[p.csv_start : p.csv_stop] for p in PIECES]


def test_a_body_shorter_than_planned_is_a_generation_error() -> None:
    async def cut() -> None:
        async for _ in _rows_of(chunks_of(64, stop=2000), 10, PIECES):
            pass

    with pytest.raises(GenerationError, match="ended before"):
        asyncio.run(cut())
