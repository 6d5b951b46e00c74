"""What a run aggregates (plain counts, or statistics) and how bad rows are treated.

One small picklable value that every worker receives, so the parser it builds, the checkpoint
key and the merge all agree on what is being computed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from export_tally.parse import BadRowMode, CountingParser, ParseResult


class Parser(Protocol):
    """A chunked CSV parser: bytes in, one result out."""

    @property
    def rows(self) -> int: ...

    def feed(self, chunk: bytes) -> None: ...

    def finish(self) -> ParseResult: ...


@dataclass(frozen=True)
class Aggregation:
    on_bad_row: BadRowMode = "fail"

    @property
    def key(self) -> str:
        """Names what is computed, for checkpoint keys: results of different kinds never mix."""
        return f"counts/{self.on_bad_row}"

    def new_parser(self) -> Parser:
        return CountingParser(on_bad_row=self.on_bad_row)
