"""Counts per (patient_id, event_type): the counting parser and its aggregator.

`CountingParser` is a `BlockParser` (see `blocks`: chunking, header, the csv.reader path and the
bad-row modes) that counts rows per (patient_id, event_type). A quote-free piece that
`fast_path` proves all good rows is split in C into one key per row (its two key fields joined
by an LF), which `Counter.update` counts in C too: per row, no Python code runs. Keys stay bytes
until the end, when each distinct key is decoded once; a key is checked (`key_fields`, which
completes the proof) once, when it first enters the Counter. The event_time and value columns
are not interpreted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from export_tally.core.aggregation import CSV, NDJSON, of_kind, unknown_format
from export_tally.core.counts.tally import Key, Tally, merge_tallies
from export_tally.core.csv.blocks import DEFAULT_MAX_LINE_BYTES, PIECE_BYTES, BlockParser
from export_tally.core.csv.fast_path import count_checked, key_fields, plain_keys
from export_tally.core.csv.reader_path import BadRowMode

if TYPE_CHECKING:
    from collections.abc import Iterable

    from export_tally.core.aggregation import Parser
    from export_tally.core.ndjson.resources import KeyMode


class CountingParser(BlockParser[Tally]):
    """Counts events per (patient_id, event_type) in an export CSV fed as chunks of bytes.

    The CSV rules, the bad-row modes and the errors are `BlockParser`'s; `finish` returns a
    BodyResult whose aggregate is a Tally.
    """

    def __init__(
        self,
        *,
        on_bad_row: BadRowMode = "fail",
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        piece_bytes: int = PIECE_BYTES,
    ) -> None:
        super().__init__(
            on_bad_row=on_bad_row, max_line_bytes=max_line_bytes, piece_bytes=piece_bytes
        )
        self._raw_counts: Counter[bytes] = Counter()  # fast path: keys as `plain_keys` makes them
        self._text_counts: Counter[Key] = Counter()  # csv path

    def _take_plain(self, block: bytes) -> int | None:
        columns = self._columns
        assert columns is not None
        left, right = sorted((columns.patient, columns.event_type))
        keys = plain_keys(block, columns.width, left, right)
        if keys is None:
            return None
        if count_checked(self._raw_counts, keys.__iter__, key_fields) is None:
            return None
        return keys.rows

    def _take_row(self, line_number: int, row: list[str]) -> None:
        assert self._columns is not None
        self._text_counts[row[self._columns.patient], row[self._columns.event_type]] += 1

    def _aggregate(self) -> Tally:
        counts = dict(self._text_counts)
        patient_left = (
            self._columns is not None and self._columns.patient < self._columns.event_type
        )
        for raw, n in self._raw_counts.items():
            right, left = raw.decode("utf-8").split("\n")
            key = (left, right) if patient_left else (right, left)
            counts[key] = counts.get(key, 0) + n
        return Tally(counts)


@dataclass(frozen=True)
class CountAggregator:
    """Counts per (patient_id, event_type): the Aggregator of a run without `--stats`.

    A CSV file is read by `CountingParser`; an NDJSON file (FHIR resources) by the NDJSON
    family's counting parser, with `key_mode` (an Observation's code or its text) and `types`
    (the resourceTypes asked for; None: any), which a CSV file does not use.
    """

    on_bad_row: BadRowMode = "fail"
    key_mode: KeyMode = "code"
    types: frozenset[str] | None = None

    @property
    def key(self) -> str:
        if self.key_mode == "code" and self.types is None:
            return f"counts/{self.on_bad_row}"  # as before NDJSON: CSV checkpoints stay valid
        types = ",".join(sorted(self.types)) if self.types is not None else "*"
        return f"counts/{self.on_bad_row}/{self.key_mode}/{types}"

    def new_parser(self, file_format: str = CSV) -> Parser[Tally]:
        if file_format == CSV:
            return CountingParser(on_bad_row=self.on_bad_row)
        if file_format == NDJSON:
            # Imported here: a CSV run never loads the NDJSON family (nor msgspec).
            from export_tally.core.ndjson.counting import NdjsonCountingParser

            return NdjsonCountingParser(self.key_mode, self.types, self.on_bad_row)
        raise unknown_format(file_format)

    def merge(self, aggregates: Iterable[Tally]) -> Tally:
        return merge_tallies(*of_kind(Tally, aggregates))

    def to_json(self, aggregate: Tally) -> Any:
        """[[patient_id, event_type, count], ...] sorted by key; with labels (NDJSON codes'
        display texts), {"counts": that list, "labels": {event_type: text}}."""
        counts = [[p, e, n] for (p, e), n in sorted(aggregate.counts.items())]
        if not aggregate.labels:
            return counts
        return {"counts": counts, "labels": dict(sorted(aggregate.labels.items()))}

    def from_json(self, data: Any) -> Tally:
        if isinstance(data, dict):
            return Tally({(p, e): n for p, e, n in data["counts"]}, data["labels"])
        return Tally({(p, e): n for p, e, n in data})

    def report(self, aggregate: Tally, precision: int) -> dict[str, Any]:
        return aggregate.to_report()  # counts are exact integers: nothing to round
