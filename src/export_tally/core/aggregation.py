"""What a run aggregates (plain counts, or statistics) and how bad rows are treated.

One small picklable value that every worker receives, so that the parser it builds, the merge,
the checkpoint format and key, and the report all agree on what is being computed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from export_tally.core.parse import BadRowMode, CountingParser
from export_tally.core.stats import Stats, merge_stats
from export_tally.core.stats_parse import StatsParser
from export_tally.core.tally import Tally, merge_tallies

Aggregate = Tally | Stats


class ParsedBody(Protocol):
    """What a parser's `finish` returns: the aggregate, and the rows it saw."""

    @property
    def tally(self) -> Aggregate: ...

    @property
    def rows(self) -> int: ...  # every data row, skipped ones included

    @property
    def skipped(self) -> int: ...

    @property
    def skipped_lines(self) -> tuple[int, ...]: ...


class Parser(Protocol):
    """A chunked CSV parser: bytes in, one result out."""

    @property
    def rows(self) -> int: ...

    def feed(self, chunk: bytes) -> None: ...

    def finish(self) -> ParsedBody: ...


@dataclass(frozen=True, slots=True)
class BodyResult:
    """A ParsedBody put together from parts, or read back from a checkpoint."""

    tally: Aggregate
    rows: int
    skipped: int
    skipped_lines: tuple[int, ...]


@dataclass(frozen=True)
class Aggregation:
    """Counts per (patient, event type), or with `stats` the statistics of issue #6."""

    on_bad_row: BadRowMode = "fail"
    stats: bool = False

    @property
    def key(self) -> str:
        """Names what is computed, for checkpoint keys: results of different kinds never mix."""
        return f"{'stats' if self.stats else 'counts'}/{self.on_bad_row}"

    def new_parser(self) -> Parser:
        if self.stats:
            return StatsParser(on_bad_row=self.on_bad_row)
        return CountingParser(on_bad_row=self.on_bad_row)

    def merge(self, aggregates: list[Aggregate]) -> Aggregate:
        """Merge partial aggregates of this kind; the identity when there are none."""
        if self.stats:
            return merge_stats(*(a for a in aggregates if isinstance(a, Stats)))
        return merge_tallies(*(a for a in aggregates if isinstance(a, Tally)))

    def to_json(self, aggregate: Aggregate) -> Any:
        """A JSON-ready form that `from_json` turns back into an equal aggregate."""
        if isinstance(aggregate, Stats):
            return aggregate.to_json()
        return [[p, e, n] for (p, e), n in sorted(aggregate.counts.items())]

    def from_json(self, data: Any) -> Aggregate:
        """Raises ValueError, KeyError or TypeError for data that is not such a form."""
        if self.stats:
            return Stats.from_json(data)
        return Tally({(p, e): n for p, e, n in data})

    def report(self, aggregate: Aggregate, precision: int) -> dict[str, Any]:
        if isinstance(aggregate, Stats):
            return aggregate.to_report(precision)
        return aggregate.to_report()
