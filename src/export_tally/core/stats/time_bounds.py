"""The earliest and latest event_time per (patient_id, event_type) of the `--stats` fast path.

Only the earliest and latest time per key matter (see `stats` on latency). `StatsParser` hands
each piece it took on its fast path (quote-free, proved all good rows, times widened to a
fixed-width form where byte order is time order: see `row_rules`) to a `TimeBounds`.

Pieces whose times are in order, each after the last, which the exports promise and one C-level
comparison per piece checks, make a *run*, held as its bytes (up to `run_bytes`). The earliest
and latest times in a run are the first and last occurrence of each key, found when the run ends
by dicts built in C from a few rows at each end: about K ln K rows for K keys, however long the
run. When the times are not in order, every row is looked at; the answer is exact either way, so
rows out of order and downloads that overlap in time are not errors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from export_tally.core.csv.fast_path import plain_fields
from export_tally.core.stats.row_rules import instant_of, widened

if TYPE_CHECKING:
    from export_tally.core.counts.tally import Key
    from export_tally.core.csv.reader_path import Columns

RUN_BYTES = 1 << 20
"""The bytes of a run of pieces in time order held before its times are noted (see above).

Noting costs about K ln K rows per run for K keys, so longer runs cost less. The run is copied
into one buffer, used again from run to run, so it holds no per-row objects (1 MiB: about 22,000
rows of `large`)."""

RawKey = tuple[bytes, bytes]
Piece = tuple[list[bytes], list[bytes], list[bytes]]
"""The patient_id, event_type and event_time columns of a piece, times widened."""


class TimeBounds:
    """The earliest and latest time per key of the pieces a parser's fast path took.

    Before a piece is added, `end_run_before` ends the run unless the piece extends it. The
    keys a run may hold must have been passed to `want` (the parser passes the keys of the
    (patient_id, event_type, value) entries new to its Counter); that count is how far from
    each end of a run the search for first and last occurrences goes. A run that lacks a key
    seen before makes the bounds forget the keys they want, so that the next runs are not read
    whole looking for it: `end_run_before`, `add` and `end_run` then return True, and the caller
    must fold its entries, so that every key that comes back brings a fresh entry and is wanted
    again.
    """

    def __init__(self, run_bytes: int = RUN_BYTES) -> None:
        self._wanted: set[RawKey] = set()  # keys of the entries new since they were forgotten
        # Earliest and latest times per key, fixed-width text (byte order is time order).
        self._first: dict[RawKey, bytes] = {}
        self._last: dict[RawKey, bytes] = {}
        # A run: pieces in time order, each after the last, whose times are not noted yet;
        # held as bytes, since only a few rows at its two ends are read (again).
        self._run = bytearray()  # the bytes of its pieces, then whatever a longer run left
        self._run_rows = self._run_bytes = 0
        self._run_begin = self._run_end = b""  # its first and last time
        self._run_limit = run_bytes
        self._columns: Columns | None = None  # those of the run's rows

    def want(self, keys: list[RawKey]) -> None:
        """Note keys the runs may hold from now on."""
        self._wanted.update(keys)

    def end_run_before(self, times: list[bytes], in_order: bool) -> bool:
        """End the run unless a piece with these times (widened; `in_order` if they are)
        extends it; True when the keys were forgotten."""
        if self._run_rows and not (in_order and self._run_end <= times[0]):
            return self.end_run()
        return False

    def add(self, block: bytes, columns: Columns, piece: Piece, in_order: bool) -> bool:
        """Note the times of a piece, after `end_run_before`: its bytes, where its fields are
        (`columns`), and its patient_id, event_type and event_time columns, times widened
        (`piece`). True when the keys were forgotten."""
        if in_order:
            return self._extend_run(block, columns, piece)
        self._note_times(*piece)
        return False

    def end_run(self) -> bool:
        """Note the earliest and latest times per key of the run of pieces in time order, and
        drop it; True when the keys were forgotten."""
        return self._end_run(None)

    def merge_into(self, first: dict[Key, int], last: dict[Key, int]) -> None:
        """Add the times noted to `first` and `last`, as instants (microseconds) by text key,
        keeping the earlier and the later of each; `end_run` first."""
        for (patient_id, event_type), time in self._first.items():
            key = (patient_id.decode(), event_type.decode())
            micros = instant_of(time)
            first[key] = min(first.get(key, micros), micros)
        for (patient_id, event_type), time in self._last.items():
            key = (patient_id.decode(), event_type.decode())
            micros = instant_of(time)
            last[key] = max(last.get(key, micros), micros)

    def _extend_run(self, block: bytes, columns: Columns, piece: Piece) -> bool:
        """Hold a piece in time order, after the run so far, until the run ends; `piece` holds
        its columns, read if the run ends with it."""
        times = piece[2]
        if not self._run_rows:
            self._run_begin = times[0]
            self._columns = columns
        held = self._run_bytes + len(block)
        self._run[self._run_bytes : held] = block  # in place, once the buffer has grown
        self._run_bytes = held
        self._run_rows += len(times)
        self._run_end = times[-1]
        if self._run_bytes >= self._run_limit:
            return self._end_run(piece)
        return False

    def _end_run(self, last: Piece | None) -> bool:
        """`end_run`; `last` holds the columns of the run's last piece, if at hand."""
        if not self._run_rows:
            return False
        forgot = self._note_ordered_times(last)
        self._run_rows = self._run_bytes = 0
        return forgot

    def _note_ordered_times(self, last_piece: Piece | None) -> bool:
        """Update the earliest and latest times per key from the run of pieces in time order;
        True when the keys were forgotten.

        Those are the first and last occurrence of each key. A dict built from (key, time) pairs
        keeps the last time given for each key, so one built in C from a window at the end of
        the run holds the latest time of every key in the window; the window grows until it
        holds every key the run may hold (those wanted), or is the whole run. Likewise from the
        start, reversed, for the earliest. About K ln K rows for K keys are read, whatever the
        length of the run: from the columns of the last piece while they are at hand, else read
        again from the run's bytes.
        """
        first, last = self._first, self._last
        wanted = len(self._wanted)
        window = 8 * wanted
        while True:
            if last_piece is not None and window < len(last_piece[2]):
                patients, types, times = (column[-window:] for column in last_piece)
                whole = False
            else:
                patients, types, times, whole = self._window(window, at_end=True)
            found = dict(zip(zip(patients, types, strict=True), times, strict=True))
            if len(found) >= wanted or whole:
                break
            window *= 4
        forgot = len(found) < wanted
        if forgot:
            # A key seen before is not in this run: so that the next runs are not read whole
            # looking for it, forget the keys (the caller folds its entries: see the class).
            self._wanted = set()
        for key, time in found.items():
            time = widened(time)  # if read again from the bytes
            if key not in last or last[key] < time:
                last[key] = time
        # Earliest: only keys this run could move back need their first occurrence.
        begin = self._run_begin
        need = {key for key in found if key not in first or begin < first[key]}
        window = 8 * len(need)
        while need:
            patients, types, times, whole = self._window(window, at_end=False)
            back = slice(None, None, -1)
            earliest = dict(
                zip(zip(patients[back], types[back], strict=True), times[back], strict=True)
            )
            if need <= earliest.keys() or whole:
                for key in need & earliest.keys():
                    time = widened(earliest[key])
                    if key not in first or time < first[key]:
                        first[key] = time
                break
            window *= 4
        return forgot

    def _window(
        self, rows: int, *, at_end: bool
    ) -> tuple[list[bytes], list[bytes], list[bytes], bool]:
        """The patient_id, event_type and event_time (not widened) columns of about the last (or
        first) `rows` rows of the run, read again from its bytes; and whether that is all of it.
        """
        run, held = self._run, self._run_bytes
        size = rows * held // self._run_rows + 1  # in bytes
        start, stop = 0, held
        whole = size >= held
        if not whole and at_end:
            start = run.find(b"\n", held - size - 1, held) + 1  # at the start of a line
        elif not whole:
            stop = run.rfind(b"\n", 0, size) + 1
        with memoryview(run) as view:
            text = bytes(view[start:stop])
        columns = self._columns
        assert columns is not None
        plain = plain_fields(text, columns.width)
        assert plain is not None, "a run holds pieces proved good"
        return (
            plain.column(columns.patient),
            plain.column(columns.event_type),
            plain.column(columns.time),
            whole,
        )

    def _note_times(self, patients: list[bytes], types: list[bytes], times: list[bytes]) -> None:
        """Update the earliest and latest times per key from a piece in any order."""
        first, last = self._first, self._last
        for key, time in zip(zip(patients, types, strict=True), times, strict=True):
            if key not in first or time < first[key]:
                first[key] = time
            if key not in last or last[key] < time:
                last[key] = time
