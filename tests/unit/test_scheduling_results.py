"""A split file's contribution put together from its parts: rows checked against the declared
ones, retries counted for the parts fetched in this run only, a quote anywhere sends it whole."""

from __future__ import annotations

import pytest

from export_tally.core.aggregation import BodyResult
from export_tally.core.counts.parser import CountAggregator
from export_tally.core.counts.tally import Tally
from export_tally.core.csv.split import ByteRange
from export_tally.errors import ProtocolError
from export_tally.scheduling.results import needs_whole_count, reassemble, whole_result
from export_tally.scheduling.tasks import Part, Task, TaskResult
from export_tally.transport.export_api import download_file
from export_tally.transport.fetch_range import Splittable
from export_tally.transport.shared_terms import FetchOutcome

FILE = download_file("x", "d1", 8, "{}")
SPLITTABLE = Splittable(b"patient_id,event_time,event_type,value\n", 1000, '"v1"')


def part(index: int, rows: int, retries: int = 0, restored: bool = False,
         saw_quote: bool = False) -> TaskResult:  # fmt: skip
    task = Task(FILE, Part(SPLITTABLE, ByteRange(100 * index, 100 * index + 100), index, 4))
    result = BodyResult(Tally({(f"P{index}", "hr"): rows}), rows, 0, ())
    return TaskResult(task, FetchOutcome(result, 100, retries, saw_quote=saw_quote), restored)


def test_parts_restored_from_checkpoints_are_not_counted_as_fetched() -> None:
    # Four parts: two restored (no attempt in this run), two fetched, one of them after a retry.
    parts = [
        part(0, 2, restored=True),
        part(1, 2, retries=1),
        part(2, 2),
        part(3, 2, restored=True),
    ]
    merged = reassemble(parts, CountAggregator())
    assert (merged.retries, merged.parts, merged.restored_parts) == (1, 4, 2)
    assert (merged.result.rows, merged.bytes, merged.download_id) == (8, 1000, "d1")
    assert merged.result.aggregate == Tally({(f"P{i}", "hr"): 2 for i in range(4)})


def test_parts_that_do_not_add_up_to_the_declared_rows_raise() -> None:
    parts = [part(0, 2), part(1, 2), part(2, 2), part(3, 1)]
    message = "download d1: its parts counted 7 rows but the metadata declares 8"
    with pytest.raises(ProtocolError, match=message):
        reassemble(parts, CountAggregator())


def test_one_part_with_a_quote_is_enough_to_count_the_file_whole() -> None:
    assert not needs_whole_count([part(0, 2), part(1, 2)])
    assert needs_whole_count([part(0, 2), part(1, 0, saw_quote=True)])


def test_a_whole_file_keeps_its_fetch_figures() -> None:
    outcome = FetchOutcome(BodyResult(Tally(), 8, 0, ()), 500, retries=3, resumes=2, restarts=1)
    result = whole_result(TaskResult(Task(FILE), outcome, restored=False))
    assert (result.retries, result.resumes, result.restarts, result.bytes) == (3, 2, 1, 500)
    assert (result.parts, result.restored) == (1, False)
