"""Pieces compressed apart make one gzip stream that zlib (and so httpx, curl) reads whole."""

from __future__ import annotations

import gzip
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st

from export_server.fhir_gzip import HEADER, GzipFraming, compress_piece, crc32_combine


@settings(max_examples=50, deadline=None)  # no deadline: the machine may be busy
@given(st.binary(max_size=300), st.binary(max_size=300))
def test_crc32_combine_is_the_crc_of_the_concatenation(a: bytes, b: bytes) -> None:
    assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)


@settings(max_examples=50, deadline=None)  # no deadline: the machine may be busy
@given(st.lists(st.binary(max_size=2000) | st.just(b"abc" * 5000), max_size=6))
def test_pieces_make_one_gzip_stream(pieces: list[bytes]) -> None:
    framing = GzipFraming()
    stream = HEADER + b"".join(framing.add(compress_piece(p)) for p in pieces) + framing.trailer()
    decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
    assert decompressor.decompress(stream) == b"".join(pieces)
    assert decompressor.eof and not decompressor.unused_data
    assert gzip.decompress(stream) == b"".join(pieces)
