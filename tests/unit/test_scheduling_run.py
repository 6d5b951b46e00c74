"""The run over fake backends: work restored from checkpoints is merged and counted in the
progress once, whole files and split ones alike; counts thrown away (a quote in a part, rows other
than declared) are taken back from the progress; a file miscounted twice is a protocol error."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import pytest

from export_tally.core.aggregation import BodyResult
from export_tally.core.counts.parser import CountAggregator
from export_tally.core.counts.tally import Tally
from export_tally.errors import ProtocolError
from export_tally.scheduling.checkpoint import CheckpointStore
from export_tally.scheduling.executors import Backend, OutageSink, Outcome, ProgressSink
from export_tally.scheduling.run import SplitPolicy, count_downloads, plan_tasks
from export_tally.scheduling.tasks import RunOptions, Task, TaskResult
from export_tally.transport.client import ClientOptions
from export_tally.transport.export_api import download_file
from export_tally.transport.fetch_range import Splittable
from export_tally.transport.shared_terms import FetchOutcome

HEADER = b"patient_id,event_time,event_type,value\n"
WHOLE = download_file("x", "d1", 3, '{"id": "d1"}')
SPLIT = download_file("x", "d2", 4, '{"id": "d2"}')
SPLITTABLE = Splittable(HEADER, 1000, '"v1"')


class NothingToFetch(Backend):
    """Four slots (so files are split), live progress; every task is restored, none submitted."""

    slots = 4
    live_progress = True

    def submit(self, options: RunOptions, task: Task) -> Outcome:
        raise AssertionError(f"{task.label} was fetched although it was saved")

    def wait(
        self, outcomes: Collection[Outcome], sink: ProgressSink | None,
        on_outage: OutageSink | None = None,
    ) -> Collection[Outcome]:  # fmt: skip
        raise AssertionError("nothing to wait for")

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


def test_restored_work_is_merged_and_its_rows_are_counted_once(tmp_path: Path) -> None:
    aggregation = CountAggregator()
    warnings: list[str] = []
    store = CheckpointStore(tmp_path, "http://server", aggregation, warnings.append)
    split = SplitPolicy(probe=lambda file: SPLITTABLE, min_part_bytes=100)
    whole = BodyResult(Tally({("A", "hr"): 3}), 3, 0, ())
    store.record(TaskResult(Task(WHOLE), FetchOutcome(whole, 100, retries=0)))
    parts = plan_tasks([SPLIT], NothingToFetch.slots, split, planned_for=2)
    assert len(parts) == 2 and all(task.is_part for task in parts)
    for index, task in enumerate(parts):
        half = BodyResult(Tally({(f"P{index}", "hr"): 2}), 2, 0, ())
        store.record(TaskResult(task, FetchOutcome(half, 400, retries=0)))

    progress: list[int] = []
    fresh = CheckpointStore(tmp_path, "http://server", aggregation, warnings.append)
    result = count_downloads(
        [WHOLE, SPLIT], RunOptions(ClientOptions("http://server"), aggregation),
        NothingToFetch(), progress.append, fresh, split,
    )  # fmt: skip
    assert sum(progress) == 7  # each restored row once, although no worker reported any
    assert result.tally == Tally({("A", "hr"): 3, ("P0", "hr"): 2, ("P1", "hr"): 2})
    d1, d2 = result.downloads
    assert (d1.download_id, d1.restored) == ("d1", True)
    assert (d2.download_id, d2.parts, d2.restored_parts) == ("d2", 2, 2)
    assert warnings == []


class Done:
    """An outcome that is already done."""

    def __init__(self, result: TaskResult) -> None:
        self._result = result

    def result(self) -> TaskResult:
        return self._result


class Canned(NothingToFetch):
    """Answers each task with a canned outcome when it finishes (progress from finished tasks,
    as on Dask)."""

    live_progress = False

    def __init__(self, outcomes: dict[str, list[FetchOutcome]]) -> None:
        self.outcomes = outcomes  # by task label, one per time the task is fetched
        self.fetched: list[str] = []

    def submit(self, options: RunOptions, task: Task) -> Outcome:
        self.fetched.append(task.label)
        return Done(TaskResult(task, self.outcomes[task.label].pop(0)))

    def wait(
        self, outcomes: Collection[Outcome], sink: ProgressSink | None,
        on_outage: OutageSink | None = None,
    ) -> Collection[Outcome]:  # fmt: skip
        return list(outcomes)


def counted(rows: int, saw_quote: bool = False, retries: int = 0) -> FetchOutcome:
    result = BodyResult(Tally({("A", "hr"): rows}) if rows else Tally(), rows, 0, ())
    return FetchOutcome(result, 400, retries=retries, saw_quote=saw_quote)


def test_parts_counted_before_a_quote_was_seen_are_taken_back_from_the_progress() -> None:
    backend = Canned({
        "download d2 part 1/2": [counted(2)],
        "download d2 part 2/2": [counted(0, saw_quote=True)],
        "download d2": [counted(4)],
    })  # fmt: skip
    progress: list[int] = []
    split = SplitPolicy(probe=lambda file: SPLITTABLE, min_part_bytes=400)  # two parts
    options = RunOptions(ClientOptions("http://server"), CountAggregator())
    result = count_downloads([SPLIT], options, backend, progress.append, None, split)
    assert backend.fetched == ["download d2 part 1/2", "download d2 part 2/2", "download d2"]
    assert sum(progress) == 4  # the first part's 2 rows were taken back when it went whole
    assert result.tally == Tally({("A", "hr"): 4})


def test_rows_other_than_declared_are_counted_once_more_from_scratch() -> None:
    backend = Canned({"download d2": [counted(3, retries=1), counted(4, retries=2)]})
    progress: list[int] = []
    options = RunOptions(ClientOptions("http://server"), CountAggregator())
    result = count_downloads([SPLIT], options, backend, progress.append)
    assert backend.fetched == ["download d2", "download d2"]
    assert sum(progress) == 4  # the first count was taken back
    (d2,) = result.downloads
    assert (d2.result.rows, d2.retries, d2.restarts) == (
        4,
        3,
        1,
    )  # the thrown-away count: a restart


def test_rows_other_than_declared_twice_are_a_protocol_error() -> None:
    backend = Canned({"download d2": [counted(3), counted(5)]})
    options = RunOptions(ClientOptions("http://server"), CountAggregator())
    message = "download d2: counted 5 rows but the metadata declares 4, twice"
    with pytest.raises(ProtocolError, match=message):
        count_downloads([SPLIT], options, backend)
