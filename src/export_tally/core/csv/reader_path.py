"""The csv.reader path: a header's columns, rows read one by one, and what happens to bad rows.

Every block that no fast path takes (it has quotes, or a fast path could not prove each of its
lines a good row) is read here, row by row, by `csv.reader`. Rows with the wrong field count, an
empty patient_id or event_type, or invalid UTF-8 are bad rows; every other row goes to the
parser's `take_row`, which may find it bad too (the stats rules).

Lines are physical lines, 1-based, the header being line 1; a record spanning several lines (a
quoted newline) is reported by the line it starts on. A bad row raises BadRowError under
`on_bad_row="fail"`; under "skip" it is left out but still counted as a row (`BadRows`).
"""

from __future__ import annotations

import csv
import itertools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from export_tally.errors import BadRowError, CsvFormatError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

REQUIRED_COLUMNS = ("patient_id", "event_time", "event_type", "value")
SKIPPED_LINES_KEPT = 5

BadRowMode = Literal["fail", "skip"]

_LINE = re.compile(r"[^\n]*\n")
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")  # what surrogateescape makes of invalid UTF-8


class BadRows:
    """The bad-row policy: "fail" raises BadRowError, "skip" counts the row and goes on.

    `skipped` counts the rows left out; `lines` keeps the first SKIPPED_LINES_KEPT of their line
    numbers. Raises ValueError for another mode.
    """

    __slots__ = ("_skip", "lines", "skipped")

    def __init__(self, mode: BadRowMode) -> None:
        if mode not in ("fail", "skip"):
            raise ValueError(f"on_bad_row must be 'fail' or 'skip', not {mode!r}")
        self._skip = mode == "skip"
        self.skipped = 0
        self.lines: list[int] = []

    def reject(self, line_number: int, reason: str) -> None:
        """A bad row at `line_number`: raise (fail) or note it (skip)."""
        if not self._skip:
            raise BadRowError(line_number, reason)
        self.skipped += 1
        if len(self.lines) < SKIPPED_LINES_KEPT:
            self.lines.append(line_number)


@dataclass(frozen=True, slots=True)
class Columns:
    """Where the required columns are in a header, and how many fields a row has."""

    width: int
    patient: int
    time: int
    event_type: int
    value: int

    @classmethod
    def from_header(cls, names: list[str]) -> Columns:
        """Raises CsvFormatError when a required column is missing or repeated."""
        missing = [name for name in REQUIRED_COLUMNS if name not in names]
        if missing:
            raise CsvFormatError(f"header lacks column(s) {', '.join(missing)}")
        repeated = [name for name in REQUIRED_COLUMNS if names.count(name) > 1]
        if repeated:
            raise CsvFormatError(f"header repeats column(s) {', '.join(repeated)}")
        return cls(len(names), *(names.index(name) for name in REQUIRED_COLUMNS))


def read_header(record: bytes) -> tuple[list[str], int]:
    """The column names of a header record (BOM already removed), and the lines it spans.

    Raises CsvFormatError when it is not valid UTF-8 or not one valid CSV record.
    """
    try:
        text = record.decode("utf-8")
        records = list(csv.reader(_LINE.findall(text), strict=True))
    except UnicodeDecodeError:
        raise CsvFormatError("line 1: header is not valid UTF-8") from None
    except csv.Error as exc:
        raise CsvFormatError(f"line 1: header is not valid CSV ({exc})") from None
    if len(records) != 1:
        raise CsvFormatError("line 1: header is not valid CSV (quotes do not pair up)")
    return records[0], text.count("\n")


@dataclass(slots=True)
class RowsRead:
    """What `read_rows` did with a block: data rows seen (bad ones included), lines used, and
    the bytes of a last record still open (a quoted field the block ends inside)."""

    rows: int
    lines: int
    rest: bytes


def read_rows(
    block: bytes,
    columns: Columns,
    first_line: int,
    take_row: Callable[[int, list[str]], None],
    bad_rows: BadRows,
) -> RowsRead:
    """Read a block of whole lines with csv.reader, giving each good row to `take_row`.

    `first_line` is the line number of the block's first line. A row that is bad by the rules
    above goes to `bad_rows.reject` (which raises in fail mode); blank lines are not rows.
    """
    try:
        text = block.decode("utf-8")
        mangled = False
    except UnicodeDecodeError:
        # Keep going so the bad rows can be found (and skipped); they show as surrogates.
        text = block.decode("utf-8", "surrogateescape")
        mangled = True
    lines = _LINE.findall(text)
    ran_out: list[bool] = []
    reader = csv.reader(itertools.chain(lines, _note_end(ran_out)), strict=True)
    width, patient, event_type = columns.width, columns.patient, columns.event_type
    reject = bad_rows.reject
    rows = 0
    done = 0  # lines used by the records read so far
    while True:
        start = first_line + done
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            if ran_out:
                break  # the block ends inside a quoted field: wait for more bytes
            rows += 1
            reject(start, f"malformed CSV ({exc})")
            done = reader.line_num
            continue
        done = reader.line_num
        if not row:
            continue
        rows += 1
        if len(row) != width:
            reject(start, f"expected {width} fields, found {len(row)}")
        elif not row[patient]:
            reject(start, "empty patient_id")
        elif not row[event_type]:
            reject(start, "empty event_type")
        elif mangled and any(_ESCAPED_BYTE.search(field) for field in row):
            reject(start, "invalid UTF-8")
        else:
            take_row(start, row)
    return RowsRead(rows, done, "".join(lines[done:]).encode("utf-8", "surrogateescape"))


def _note_end(ran_out: list[bool]) -> Iterator[str]:
    """An empty iterator that records in `ran_out` when someone asks it for a line."""
    ran_out.append(True)
    yield from ()
