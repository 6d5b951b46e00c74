"""The disk cache of generated bodies: where entries live, and how they are written atomically.

Layout: `ROOT/v{FORMAT_VERSION}-{FINGERPRINT}/{export_id}/{download_id}.csv`, where FINGERPRINT is
the first 12 hex digits of the dataset's fingerprint (`fingerprint.py`, which covers the format
version too). A generator whose bytes change (and bumps the version), or an edited dataset
definition, never finds a stale entry.

An entry is written under a temporary name (`.{download_id}.{random}.tmp` beside it) and renamed
into place only once complete and synced, so a crash, a kill or a failed write never leaves a
partial file under an entry's name. The server holds an exclusive `flock` on its temporary file
for as long as it lives: the kernel drops the lock when the server dies, which is how start-up
tells the leftovers of a killed server from a file another running server is still writing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_cache_path

from export_server.dataset import Download
from export_server.fingerprint import definition_fingerprint
from export_server.generate import FORMAT_VERSION

TEMP_SUFFIX = ".tmp"
ENTRY_SUFFIX = ".csv"


def default_cache_dir() -> Path:
    """The per-user cache directory, e.g. `~/.cache/export-tally/bodies` on Linux."""
    return user_cache_path("export-tally") / "bodies"


@dataclass(frozen=True)
class Usage:
    """What a cache directory holds: complete entries (of any format version) and their bytes."""

    entries: int
    size: int


class OpenFile:
    """A file descriptor that is closed when the last reference to it goes, not before.

    Reads and writes run in threads. A request cancelled while its read is still running in a
    thread must not close the descriptor under it (its number could be reused by another file by
    then), so nobody closes it explicitly: the running call's reference keeps it open.
    """

    fd = -1  # until opened: __del__ runs even when opening failed

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def pread(self, length: int, offset: int) -> bytes:
        """Up to `length` bytes at `offset`. Blocking: call in a thread."""
        return os.pread(self.fd, length, offset)

    def __del__(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)


class PendingEntry(OpenFile):
    """An entry being written, by a generator process, under a temporary name.

    The front creates the file and holds it open (and locked) while a generator process opens it
    by `path` and writes the body; readers `pread` the bytes already written. `commit` renames it
    into place once the writer has synced it; `discard` removes it. Reads stay valid either way.
    """

    def __init__(self, final: Path) -> None:
        self.final = final
        self.path = final.with_name(f".{final.stem}.{uuid.uuid4().hex[:12]}{TEMP_SUFFIX}")
        super().__init__(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644))
        fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def commit(self) -> None:
        """Make the entry visible under its final name (its bytes must be synced already)."""
        os.replace(self.path, self.final)

    def discard(self) -> None:
        """Remove the temporary file (safe to call more than once)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


class Cache:
    """A cache directory. Methods raise OSError when the directory cannot be used."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def entry_path(self, download: Download) -> Path:
        version = f"v{FORMAT_VERSION}-{definition_fingerprint()[:12]}"
        export_dir = self.root / version / download.export.export_id
        return export_dir / f"{download.id}{ENTRY_SUFFIX}"

    def ensure_writable(self) -> None:
        """Create the directory if needed; raises OSError when it cannot be written."""
        self.root.mkdir(parents=True, exist_ok=True)
        probe = self.root / f".probe.{os.getpid()}{TEMP_SUFFIX}"
        probe.write_bytes(b"")
        probe.unlink()

    def open_entry(self, download: Download) -> OpenFile | None:
        """The download's complete entry, open for reading, or None when it is not cached."""
        try:
            return OpenFile(os.open(self.entry_path(download), os.O_RDONLY))
        except FileNotFoundError:
            return None

    def create_entry(self, download: Download) -> PendingEntry:
        """A new, empty temporary file for the download's entry; raises OSError."""
        final = self.entry_path(download)
        final.parent.mkdir(parents=True, exist_ok=True)
        return PendingEntry(final)

    def _files(self, pattern: str) -> list[Path]:
        """Files of this cache's layout only: a mistaken --cache-dir never loses other files."""
        return [p for p in self.root.glob(f"v*/*/{pattern}") if p.is_file()]

    def remove_stale_temporaries(self) -> int:
        """Delete temporary files whose writer is gone (nobody holds their lock); returns how many."""
        removed = 0
        for path in self._files(f".*{TEMP_SUFFIX}"):
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live writer (perhaps another server sharing the directory)
            else:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed += 1
            finally:
                os.close(fd)
        return removed

    def usage(self) -> Usage:
        entries = self._files(f"*{ENTRY_SUFFIX}")
        return Usage(len(entries), sum(p.stat().st_size for p in entries))

    def clear(self) -> Usage:
        """Delete every entry (all format versions) and unlocked temporary; returns what went."""
        cleared = self.usage()
        for path in self._files(f"*{ENTRY_SUFFIX}"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self.remove_stale_temporaries()
        for version_dir in self.root.glob("v*"):
            if version_dir.is_dir() and not any(version_dir.glob("*/*")):
                shutil.rmtree(version_dir, ignore_errors=True)
        return cleared
