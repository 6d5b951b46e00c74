"""Counts per (patient_id, key) of FHIR resources in NDJSON: the counting parser, its aggregator.

The fast path (`decoding.decode_lines`) turns the lines of a chunk into their Resources, which
a Counter counts as they are: Resources hold no `id`, so the lines of one patient and one code
are equal Resources, and counting them stays in C (one hash per line). A Resource is judged
(`resources.judge`: its patient, key and label, or a bad row) once, when it is first counted:
the Counter keeps insertion order, so the new ones are its last entries. If one of them is a bad
row, the piece's counts are taken back and its lines go one by one, so that the bad row is found
with its line number. Every other piece goes line by line (`decoding.decode_line`).
"""

from __future__ import annotations

from collections import Counter
from itertools import islice
from typing import TYPE_CHECKING

from export_tally.core.counts.tally import Key, Tally
from export_tally.core.ndjson.decoding import decode_line, decode_lines, fast_decoder
from export_tally.core.ndjson.lines import (
    DEFAULT_MAX_LINE_BYTES,
    PIECE_LINES,
    BadRowMode,
    LineParser,
    is_blank,
)
from export_tally.core.ndjson.resources import (
    Counted,
    FastResource,
    KeyMode,
    judge,
    needs_full_form,
)

if TYPE_CHECKING:
    pass


class NdjsonCountingParser(LineParser[Tally]):
    """Counts FHIR resources per (patient_id, key) in an NDJSON body fed as chunks of bytes.

    `key_mode`: an Observation's key is its code ("code") or its text ("text"); other
    resources count under their resourceType (see `resources` for every rule). `types`: the
    resourceTypes asked for (a resource of another is a bad row), or None for any.
    `on_bad_row`: "fail" raises NdjsonBadRowError at the first bad row, "skip" leaves bad rows
    out of the tally (counted in `rows`, `skipped`, the first line numbers in `skipped_lines`).

    `finish` returns a BodyResult whose Tally counts resources that name no patient under
    `tally.NO_PATIENT` (`Tally.without_patient` lists them), and labels each code (key mode
    "code") with the display of the first line counted under it, else that line's code.text
    (no label if it has neither).
    """

    def __init__(
        self,
        key_mode: KeyMode = "code",
        types: frozenset[str] | None = None,
        on_bad_row: BadRowMode = "fail",
        *,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        piece_lines: int = PIECE_LINES,
    ) -> None:
        if key_mode not in ("code", "text"):
            raise ValueError(f"key_mode must be 'code' or 'text', not {key_mode!r}")
        super().__init__(
            on_bad_row=on_bad_row, max_line_bytes=max_line_bytes, piece_lines=piece_lines
        )
        self._mode: KeyMode = key_mode
        self._types = types
        self._decoder = fast_decoder(key_mode, types)
        self._resources: Counter[FastResource] = Counter()  # fast path
        self._judged: dict[FastResource, Counted] = {}  # what each of them counts as
        self._keys: Counter[Key] = Counter()  # line by line
        self._labels: dict[str, str] = {}
        self._labelled: set[str] = set()  # keys whose first line was read for a label
        self._line_rows = 0

    @property
    def fast_rows(self) -> int:
        """How many of `rows` the fast path took (the rest went line by line)."""
        return self._rows - self._line_rows

    def _take_lines(self, lines: list[bytes], first_line: int, ascii: bool) -> int:
        resources = decode_lines(lines, self._decoder, ascii)
        if resources is not None and self._count_fast(resources, lines):
            return len(resources)
        rows = self._take_one_by_one(lines, first_line)
        self._line_rows += rows
        return rows

    def _count_fast(self, resources: list[FastResource], lines: list[bytes]) -> bool:
        """Count the resources, judging the new ones; False (nothing counted) if one of them is
        a bad row."""
        counts = self._resources
        before = len(counts)
        counts.update(resources)
        if len(counts) == before:
            return True  # most pieces: every resource was judged before
        fresh = list(islice(reversed(counts), len(counts) - before))
        fresh.reverse()  # in the order of their first lines, for the labels
        judged = [judge(resource, self._mode, self._types) for resource in fresh]
        if any(
            # A bad row, or a form that leaves out what its verdict may need: the piece goes one
            # by one. Such forms are never kept, so each is new again in the next piece.
            isinstance(verdict, str) or needs_full_form(resource, verdict)
            for resource, verdict in zip(fresh, judged, strict=True)
        ):
            counts.subtract(resources)
            for resource in fresh:
                del counts[resource]
            return False
        for resource, verdict in zip(fresh, judged, strict=True):
            assert not isinstance(verdict, str)
            self._judged[resource] = verdict
            if verdict[1] not in self._labelled:
                # The key's first line: its label is in the fields the fast form leaves out.
                line = lines[resources.index(resource)]
                self._label(verdict[1], judge_line(line, self._mode, self._types))
        return True

    def _label(self, key: str, verdict: Counted | str) -> None:
        """Note the label of `key` from the verdict on its first line."""
        self._labelled.add(key)
        if not isinstance(verdict, str) and verdict[2] is not None:
            self._labels[key] = verdict[2]

    def _take_one_by_one(self, lines: list[bytes], first_line: int) -> int:
        rows = 0
        reject = self._bad_rows.reject
        for index, line in enumerate(lines):
            if is_blank(line):
                continue
            rows += 1
            verdict = judge_line(line, self._mode, self._types)
            if isinstance(verdict, str):
                reject(first_line + index, verdict)
                continue
            patient, key, _ = verdict
            self._keys[patient, key] += 1
            if key not in self._labelled:
                self._label(key, verdict)
        return rows

    def _aggregate(self) -> Tally:
        counts = dict(self._keys)
        judged = self._judged
        for resource, n in self._resources.items():
            patient, key, _ = judged[resource]
            counts[patient, key] = counts.get((patient, key), 0) + n
        return Tally(counts, self._labels)


def judge_line(line: bytes, mode: KeyMode, types: frozenset[str] | None) -> Counted | str:
    """What one line (not blank) counts as, or why it is a bad row: the full decoder's way."""
    resource = decode_line(line)
    return resource if isinstance(resource, str) else judge(resource, mode, types)
