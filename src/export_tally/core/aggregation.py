"""The seam between a run and what it computes: an `Aggregator`, and the result of one body.

An Aggregator is a small picklable value that every worker receives. It owns everything that
depends on what is computed, so that they cannot disagree: the parser it makes, how partial
aggregates merge, their checkpoint encoding and key, and the report. There are two:
`counts.parser.CountAggregator` (counts per patient and event type) and
`stats.parser.StatsAggregator` (`--stats`). Each makes a parser for a file's format
(`new_parser(file_format)`): CSV or NDJSON, one parser family per format under `core/`
(`--stats` reads CSV only). Merging aggregates of another kind is a programming error and raises TypeError;
nothing is ever dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from export_tally.errors import ProtocolError

if TYPE_CHECKING:
    from collections.abc import Iterable

A = TypeVar("A")
K = TypeVar("K")

CSV = "csv"
"""A file's `format`: the export API's CSV (core/csv/)."""
NDJSON = "ndjson"
"""A file's `format`: FHIR resources, one JSON object a line (core/ndjson/)."""


@dataclass(frozen=True, slots=True)
class BodyResult(Generic[A]):
    """What one body (or one download put together from parts) added up to.

    `rows` counts every data row, skipped ones included (so it can be checked against the row
    count the server announces); `skipped_lines` holds the first few skipped line numbers.
    """

    aggregate: A
    rows: int
    skipped: int
    skipped_lines: tuple[int, ...]


class Parser(Protocol[A]):
    """A chunked parser of one file format: bytes in, one result out."""

    @property
    def rows(self) -> int: ...  # data rows so far, for progress

    def feed(self, chunk: bytes) -> None: ...

    def finish(self) -> BodyResult[A]: ...


class Aggregator(Protocol[A]):
    """What a run computes from every body, and everything that depends on it."""

    @property
    def key(self) -> str:
        """Names what is computed, for checkpoint keys: results of different kinds never mix."""
        ...

    def new_parser(self, file_format: str = CSV) -> Parser[A]:
        """A parser for a body in `file_format`; ProtocolError for a format it cannot read."""
        ...

    def merge(self, aggregates: Iterable[A]) -> A:
        """Merge partial aggregates; the identity when there are none. TypeError for an
        aggregate of another kind."""
        ...

    def to_json(self, aggregate: A) -> Any:
        """A JSON-ready form that `from_json` turns back into an equal aggregate."""
        ...

    def from_json(self, data: Any) -> A:
        """Raises ValueError, KeyError or TypeError for data that is not such a form."""
        ...

    def report(self, aggregate: A, precision: int) -> dict[str, Any]:
        """The aggregate as printed: `precision` decimal places where numbers are rounded."""
        ...


def of_kind(kind: type[K], aggregates: Iterable[object]) -> list[K]:
    """The aggregates, all of `kind`; TypeError names the first that is not."""
    checked = []
    for aggregate in aggregates:
        if not isinstance(aggregate, kind):
            raise TypeError(
                f"cannot merge a {type(aggregate).__name__} into a {kind.__name__}: "
                "aggregates of different kinds never mix"
            )
        checked.append(aggregate)
    return checked


def unknown_format(file_format: str) -> ProtocolError:
    """The error for a file in a format no parser of the run reads."""
    return ProtocolError(f"no parser for files of format {file_format!r}")
