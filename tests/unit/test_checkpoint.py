"""The checkpoint store: what it gives back is what was saved, or nothing (with a warning)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from export_tally.core.aggregation import Aggregator, BodyResult
from export_tally.core.counts.parser import CountAggregator
from export_tally.core.counts.tally import Tally
from export_tally.core.csv.split import ByteRange
from export_tally.scheduling.checkpoint import CheckpointStore, _digest
from export_tally.scheduling.tasks import Part, Task, TaskResult
from export_tally.transport.export_api import download_file
from export_tally.transport.fetch_range import Splittable
from export_tally.transport.shared_terms import FetchOutcome, RemoteFile
from tests.support.damage import alter_a_count, truncate

INFO = download_file("x", "d1", 3, '{"id": "d1", "rows": 3}')
OTHER = download_file("x", "d2", 1, '{"id": "d2", "rows": 1}')
RESULT = BodyResult(Tally({("A", "hr"): 2, ("B", "hr"): 1}), 3, 0, ())
SPLITTABLE = Splittable(b"patient_id,event_time,event_type,value\n", 1000, '"v1"')
PART = Task(INFO, Part(SPLITTABLE, ByteRange(39, 500), 0, 2))


def whole(file: RemoteFile, result: BodyResult[Any], size: int) -> TaskResult:
    """A whole file's task, done in this run."""
    return TaskResult(Task(file), FetchOutcome(result, size, retries=0))


class Store:
    """A store in a temporary directory, and the warnings it gave."""

    def __init__(self, directory: Path, aggregation: Aggregator[Any] | None = None) -> None:
        self.warnings: list[str] = []
        self.store = CheckpointStore(
            directory, "http://server", aggregation or CountAggregator(), self.warnings.append
        )


def entry_file(directory: Path) -> Path:
    (entry,) = directory.glob("*.json")
    return entry


def saved(directory: Path) -> Store:
    first = Store(directory)
    first.store.record(whole(INFO, RESULT, 123))
    return first


def test_a_saved_download_comes_back_equal(tmp_path: Path) -> None:
    saved(tmp_path)
    fresh = Store(tmp_path)
    loaded = fresh.store.lookup(Task(INFO))
    assert loaded is not None and loaded.restored and loaded.outcome.bytes == 123
    assert loaded.outcome.result == RESULT
    assert fresh.warnings == []
    assert fresh.store.downloads_held == 1


def test_nothing_saved_is_none_without_a_warning(tmp_path: Path) -> None:
    fresh = Store(tmp_path)
    assert fresh.store.lookup(Task(INFO)) is None
    assert fresh.warnings == []
    assert fresh.store.downloads_held == 0


def drop_the_digest(path: Path) -> None:
    entry = json.loads(path.read_text())
    del entry["digest"]
    path.write_text(json.dumps(entry))


def not_utf8(path: Path) -> None:
    path.write_bytes(b"\xff\xfe{}")


def a_list(path: Path) -> None:
    path.write_text("[1, 2]")


def unreadable(path: Path) -> None:
    path.unlink()
    path.mkdir()  # reading a directory fails even as root, unlike a chmod


def resigned(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    """A damage that changes the entry and signs it again: whole JSON with a matching digest,
    so only the checks of what it holds can catch it."""

    def damage(path: Path) -> None:
        entry = json.loads(path.read_text())
        del entry["digest"]
        change(entry)
        path.write_text(json.dumps({**entry, "digest": _digest(entry)}))

    return damage


def no_rows(entry: dict[str, Any]) -> None:
    del entry["rows"]


def size_as_text(entry: dict[str, Any]) -> None:
    entry["bytes"] = "123"


def fewer_rows(entry: dict[str, Any]) -> None:
    entry["rows"] = 2


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        pytest.param(truncate, "is not whole JSON", id="truncated"),
        pytest.param(alter_a_count, "does not match its digest", id="altered-count"),
        pytest.param(drop_the_digest, "has no digest", id="no-digest"),
        pytest.param(not_utf8, "is not whole JSON", id="not-utf-8"),
        pytest.param(a_list, "has no digest", id="not-an-object"),
        pytest.param(unreadable, "cannot be read", id="unreadable"),
        pytest.param(resigned(no_rows), "does not hold a result", id="no-rows"),
        pytest.param(resigned(size_as_text), "does not hold a result", id="size-not-a-number"),
        pytest.param(
            resigned(fewer_rows), "counts 2 rows, the metadata 3", id="rows-not-the-metadatas"
        ),
    ],
)
def test_a_damaged_entry_is_ignored_with_a_warning(
    tmp_path: Path, damage: Callable[[Path], None], problem: str
) -> None:
    saved(tmp_path)
    path = entry_file(tmp_path)
    damage(path)
    fresh = Store(tmp_path)
    assert fresh.store.lookup(Task(INFO)) is None
    (warning,) = fresh.warnings
    assert str(path) in warning and problem in warning
    assert "download d1 is counted again" in warning
    assert fresh.store.downloads_held == 0


def test_another_downloads_entry_under_this_name_is_ignored(tmp_path: Path) -> None:
    first = Store(tmp_path)
    first.store.record(whole(OTHER, BodyResult(Tally({("A", "hr"): 1}), 1, 0, ()), 9))
    other_path = entry_file(tmp_path)
    first.store.record(whole(INFO, RESULT, 123))
    (path,) = set(tmp_path.glob("*.json")) - {other_path}
    path.write_bytes(other_path.read_bytes())
    fresh = Store(tmp_path)
    assert fresh.store.lookup(Task(INFO)) is None
    assert "belongs to another download" in fresh.warnings[0]


def test_the_aggregation_is_part_of_the_key(tmp_path: Path) -> None:
    saved(tmp_path)
    skipping = Store(tmp_path, CountAggregator("skip"))
    assert skipping.store.lookup(Task(INFO)) is None
    assert skipping.warnings == []


def test_a_part_comes_back_and_is_removed_once_its_download_is_saved(tmp_path: Path) -> None:
    first = Store(tmp_path)
    first.store.record(TaskResult(PART, FetchOutcome(RESULT, 461, retries=1)))
    assert first.store.parts_held == 1
    fresh = Store(tmp_path)
    other_range = Task(INFO, Part(SPLITTABLE, ByteRange(39, 600), 0, 2))
    assert fresh.store.lookup(other_range) is None
    loaded = fresh.store.lookup(PART)
    assert loaded is not None and loaded.restored and loaded.outcome.retries == 0
    assert loaded.outcome.result == RESULT and loaded.outcome.saw_quote is False
    fresh.store.record(whole(INFO, RESULT, 1000))
    assert len(list(tmp_path.glob("*.json"))) == 1  # the whole download's entry only
    assert (fresh.store.downloads_held, fresh.store.parts_held) == (1, 0)


def test_a_part_without_its_quote_flag_is_ignored_with_a_warning(tmp_path: Path) -> None:
    Store(tmp_path).store.record(TaskResult(PART, FetchOutcome(RESULT, 461, retries=0)))
    path = entry_file(tmp_path)
    resigned(lambda entry: entry.update(saw_quote="no"))(path)
    fresh = Store(tmp_path)
    assert fresh.store.lookup(PART) is None
    (warning,) = fresh.warnings
    assert str(path) in warning and "does not hold a result" in warning
    assert "download d1 part 1/2 is counted again" in warning
    assert fresh.store.parts_held == 0


def test_a_save_that_fails_warns_once_and_the_run_goes_on(tmp_path: Path) -> None:
    directory = tmp_path / "checkpoints"
    store = Store(directory)
    directory.rmdir()
    directory.write_text("")  # the directory is gone, a file took its place
    store.store.record(whole(INFO, RESULT, 123))
    store.store.record(whole(OTHER, RESULT, 123))
    (warning,) = store.warnings
    assert f"cannot save checkpoints in {directory}" in warning
    assert store.store.downloads_held == 0


def test_a_rename_that_fails_leaves_no_temporary_file(tmp_path: Path) -> None:
    first = saved(tmp_path)
    path = entry_file(tmp_path)
    path.unlink()
    (path / "in-the-way").mkdir(parents=True)  # the entry's name is taken by a directory
    first.store.record(whole(INFO, RESULT, 123))
    (warning,) = first.warnings
    assert "finished downloads are no longer kept for a rerun" in warning
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_discard_removes_entries_and_empty_directories_only(tmp_path: Path) -> None:
    root = tmp_path / "root"
    directory = root / "server" / "export"
    store = Store(directory)
    store.store.record(whole(INFO, RESULT, 123))
    (directory / ".entry.abc.tmp").write_text("left by a kill")
    store.store.discard(up_to=root)
    assert list(root.iterdir()) == []

    kept = Store(directory)
    kept.store.record(whole(INFO, RESULT, 123))
    (directory / "notes.txt").write_text("not ours")
    kept.store.discard(up_to=root)
    assert [p.name for p in directory.iterdir()] == ["notes.txt"]
