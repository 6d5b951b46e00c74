"""One gzip stream from pieces compressed apart, in other processes (as pigz does).

Each piece is raw deflate from a fresh compressor, ended by a sync flush: it refers to nothing
before it and ends on a byte boundary, so the pieces laid end to end are one valid deflate stream.
The front adds the gzip header, an empty final block, and the trailer: the CRC-32 of the whole,
combined from the pieces' CRCs and lengths (`crc32_combine`, zlib's algorithm; the stdlib does
not expose it), and the length modulo 2**32.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

# Speed over size: the lines are so alike that level 1 already shrinks them about tenfold.
LEVEL = 1
# The gzip header: deflate, no flags, no time, no extra flags, unknown OS (RFC 1952).
HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
# An empty final block (fixed Huffman): what a fresh raw compressor's `flush()` writes.
FINAL_BLOCK = b"\x03\x00"
_CRC_POLYNOMIAL = 0xEDB88320


@dataclass(frozen=True)
class Compressed:
    """One piece: its deflate bytes, and the CRC-32 and length of what they hold."""

    data: bytes
    crc: int
    length: int


def compress_piece(data: bytes) -> Compressed:
    """`data` as raw deflate that any following piece can be appended to."""
    compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    deflated = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return Compressed(deflated, zlib.crc32(data), len(data))


def _multiply(a: int, b: int) -> int:
    """a * b modulo the CRC polynomial, in zlib's reflected bit order."""
    m = 1 << 31
    product = 0
    while True:
        if a & m:
            product ^= b
            if not a & (m - 1):
                return product
        m >>= 1
        b = (b >> 1) ^ _CRC_POLYNOMIAL if b & 1 else b >> 1


# x to the power 2**k, modulo the polynomial, for k in 0..31 (the powers repeat after that).
_POWERS = [1 << 30]
for _ in range(31):
    _POWERS.append(_multiply(_POWERS[-1], _POWERS[-1]))


def crc32_combine(crc1: int, crc2: int, length2: int) -> int:
    """The CRC-32 of A + B from the CRC of A, the CRC of B and the length of B in bytes.

    zlib's method: A's CRC times x to the power of B's length in bits, plus B's CRC.
    """
    shift = 1 << 31  # x to the power 0
    bits, k = length2, 3  # the length in bytes, times 2**3
    while bits:
        if bits & 1:
            shift = _multiply(_POWERS[k & 31], shift)
        bits >>= 1
        k += 1
    return _multiply(shift, crc1) ^ crc2


class GzipFraming:
    """The bytes around the pieces: `HEADER` first, `trailer()` after the last piece."""

    def __init__(self) -> None:
        self.crc = 0
        self.length = 0

    def add(self, piece: Compressed) -> bytes:
        """The piece's bytes, its CRC and length taken into the whole's."""
        self.crc = crc32_combine(self.crc, piece.crc, piece.length)
        self.length += piece.length
        return piece.data

    def trailer(self) -> bytes:
        return FINAL_BLOCK + struct.pack("<II", self.crc, self.length & 0xFFFFFFFF)
