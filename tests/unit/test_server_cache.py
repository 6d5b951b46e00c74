"""The disk cache: atomic entries, stale temporaries, clearing only what is ours."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from export_server.cache import Cache, PendingEntry
from export_server.dataset import downloads_of
from export_server.fingerprint import definition_fingerprint
from export_server.generate import FORMAT_VERSION

DEMO_FIRST, DEMO_SECOND = downloads_of("demo")


def temporaries(root: Path) -> list[Path]:
    return sorted(root.glob("v*/*/.*.tmp"))


def write(entry: PendingEntry, data: bytes) -> None:
    """Append to the entry as a generator process does: through a file of its own."""
    with open(entry.path, "ab") as file:
        file.write(data)


def test_an_entry_is_keyed_by_format_version_fingerprint_export_and_download(
    tmp_path: Path,
) -> None:
    path = Cache(tmp_path).entry_path(DEMO_FIRST)
    version = f"v{FORMAT_VERSION}-{definition_fingerprint()[:12]}"
    assert path == tmp_path / version / "demo" / f"{DEMO_FIRST.id}.csv"


def test_an_entry_appears_only_when_committed(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    entry = cache.create_entry(DEMO_FIRST)
    write(entry, b"patient_id,")
    write(entry, b"event_time\n")
    assert cache.open_entry(DEMO_FIRST) is None
    assert entry.pread(100, 0) == b"patient_id,event_time\n"
    entry.commit()
    committed = cache.open_entry(DEMO_FIRST)
    assert committed is not None and committed.pread(100, 0) == b"patient_id,event_time\n"
    assert temporaries(tmp_path) == []


def test_a_discarded_entry_leaves_nothing(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    entry = cache.create_entry(DEMO_FIRST)
    write(entry, b"partial")
    entry.discard()
    assert cache.open_entry(DEMO_FIRST) is None
    assert temporaries(tmp_path) == []
    assert cache.usage().entries == 0


def test_a_live_writers_temporary_is_kept_at_start_up(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    entry = cache.create_entry(DEMO_FIRST)
    write(entry, b"in progress")
    # Another server starting on the same directory must not delete a file being written.
    assert Cache(tmp_path).remove_stale_temporaries() == 0
    assert temporaries(tmp_path) == [entry.path]


def test_a_killed_writers_temporary_is_removed_at_start_up(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from export_server.cache import Cache\n"
        "from export_server.dataset import downloads_of\n"
        "entry = Cache(Path(sys.argv[1])).create_entry(downloads_of('demo')[0])\n"
        "entry.path.write_bytes(b'x' * 100_000)\n"
        "print('writing', flush=True)\n"
        "sys.stdin.read()\n"  # still writing, as far as anyone can tell, until it is killed
    )
    with subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    ) as child:  # fmt: skip
        assert child.stdout is not None and child.stdout.readline() == "writing\n"
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert len(temporaries(tmp_path)) == 1
    cache = Cache(tmp_path)
    assert cache.open_entry(DEMO_FIRST) is None  # the kill never left a partial entry
    assert cache.remove_stale_temporaries() == 1
    assert temporaries(tmp_path) == []


def test_usage_and_clear_count_every_format_version(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    for download in (DEMO_FIRST, DEMO_SECOND):
        entry = cache.create_entry(download)
        write(entry, b"0123456789")
        entry.commit()
    old = tmp_path / "v0" / "demo" / "old.csv"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"stale")
    assert (cache.usage().entries, cache.usage().size) == (3, 25)
    cleared = cache.clear()
    assert (cleared.entries, cleared.size) == (3, 25)
    assert cache.usage().entries == 0
    assert not (tmp_path / "v0").exists()


def test_clear_leaves_files_that_are_not_the_caches(tmp_path: Path) -> None:
    mine = tmp_path / "notes.txt"
    mine.write_text("keep me")
    nested = tmp_path / "project" / "data.csv"
    nested.parent.mkdir()
    nested.write_text("keep me too")
    Cache(tmp_path).clear()
    assert mine.read_text() == "keep me"
    assert nested.read_text() == "keep me too"


def test_an_entry_reads_back_while_written(tmp_path: Path) -> None:
    entry = PendingEntry(tmp_path / "entry.csv")
    write(entry, b"abc")
    assert entry.pread(2, 1) == b"bc"
    write(entry, b"def")
    assert entry.pread(10, 0) == b"abcdef"
    entry.discard()
    assert entry.pread(10, 0) == b"abcdef"  # still open: readers finish what they started
