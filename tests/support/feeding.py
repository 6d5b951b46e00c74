"""How the parser tests feed a body: the usual header, one chunking, and feeding it all."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from collections.abc import Iterable

    from export_tally.core.aggregation import BodyResult, Parser

A = TypeVar("A")

HEADER = b"patient_id,event_time,event_type,value\n"


def feed_all(parser: Parser[A], chunks: Iterable[bytes]) -> BodyResult[A]:
    """Feed `parser` every chunk, then finish it."""
    for chunk in chunks:
        parser.feed(chunk)
    return parser.finish()


def one_byte_at_a_time(body: bytes) -> list[bytes]:
    return [body[i : i + 1] for i in range(len(body))]
