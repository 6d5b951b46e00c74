"""Checkpoints: each finished task's result (a whole file, or a byte-range part), saved so a rerun
skips it. The run asks the store two things: `lookup(task)` and `record(result)`.

An entry is keyed by everything that could make it wrong to reuse: the server's identity, the
export, the download id, the download's metadata as the server gave it, what is aggregated (the
kind of result and the bad-row mode) and a format version; a part's key adds the body's size and
ETag and its byte range. A stale entry is never found. Entries are JSON (not pickle), so a
checkpoint directory from elsewhere can be read without trusting it with code execution, and each
carries the SHA-256 of its content: an entry that is truncated, altered or unreadable is ignored
with a warning and its work done again, never trusted.

Beside the results, a source may keep a note (`remember`, `recall`, `forget`): a FHIR export
job's status URL, so that a rerun polls the job the first run started.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from export_tally.core.aggregation import BodyResult
from export_tally.errors import UsageError
from export_tally.scheduling.tasks import TaskResult
from export_tally.transport.shared_terms import FetchOutcome

if TYPE_CHECKING:
    from pathlib import Path

    from export_tally.core.aggregation import Aggregator
    from export_tally.scheduling.tasks import Task

FORMAT_VERSION = 3
TEMP_PREFIX = ".entry."

Warn = Callable[[str], None]


class _Untrusted(Exception):
    """Internal: an entry exists but cannot be used; the message says why."""


def _digest(entry: dict[str, Any]) -> str:
    canonical = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class CheckpointStore:
    """Saved results for one run's configuration, in a directory (created when missing).

    `warn` receives one line for each entry that is ignored, and for the first save that fails
    (saving then stops; the run goes on). The store remembers which downloads and parts it holds
    for this run, saved now or found from before, so a failed run can say what a rerun resumes.
    """

    def __init__(
        self, directory: Path, server_identity: str, aggregation: Aggregator[Any], warn: Warn
    ) -> None:
        self.directory = directory
        self.server_identity = server_identity
        self.aggregation = aggregation
        self._warn = warn
        self._saving = True
        self._downloads: set[str] = set()
        self._parts: dict[str, set[Path]] = {}  # download id -> its part entries held
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(
                f"cannot use checkpoint directory {directory}: {exc.strerror}"
            ) from exc
        if not os.access(directory, os.W_OK):
            raise UsageError(f"cannot use checkpoint directory {directory}: not writable")

    @property
    def downloads_held(self) -> int:
        """Downloads of this run whose results are in the store (saved now or before)."""
        return len(self._downloads)

    @property
    def parts_held(self) -> int:
        """Parts of downloads not yet whole whose results are in the store."""
        return sum(len(paths) for paths in self._parts.values())

    # --- keys ---------------------------------------------------------------------------------

    def _key(self, task: Task) -> str:
        fields: list[Any] = [
            FORMAT_VERSION,
            self.server_identity,
            *task.file.key,
            self.aggregation.key,
            *task.part_key,
        ]
        return hashlib.sha256(json.dumps(fields).encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    # --- reading ------------------------------------------------------------------------------

    def _read(self, key: str) -> dict[str, Any] | None:
        """The verified entry saved under `key`; None when there is none. Raises _Untrusted."""
        try:
            raw = self._path(key).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _Untrusted(f"cannot be read ({exc.strerror})") from exc
        try:
            entry = json.loads(raw)
        except ValueError as exc:
            raise _Untrusted("is not whole JSON") from exc
        if not isinstance(entry, dict) or not isinstance(entry.get("digest"), str):
            raise _Untrusted("has no digest")
        digest = entry.pop("digest")
        if digest != _digest(entry):
            raise _Untrusted("does not match its digest (it was altered)")
        if entry.get("key") != key:
            raise _Untrusted("belongs to another download")
        return entry

    def _body(self, entry: dict[str, Any]) -> BodyResult[Any]:
        try:
            return BodyResult(
                self.aggregation.from_json(entry["aggregate"]),
                int(entry["rows"]),
                int(entry["skipped"]),
                tuple(int(line) for line in entry["skipped_lines"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise _Untrusted("does not hold a result") from exc

    def _ignore(self, key: str, problem: _Untrusted, what: str) -> None:
        self._warn(f"checkpoint {self._path(key)} {problem}: ignored; {what} is counted again")

    def lookup(self, task: Task) -> TaskResult | None:
        """The saved result of this task, or None when there is none or it cannot be trusted."""
        key = self._key(task)
        try:
            entry = self._read(key)
            if entry is None:
                return None
            result = self._body(entry)
            part = task.part
            if part is None:
                size = entry.get("bytes")
                if not isinstance(size, int):
                    raise _Untrusted("does not hold a result")
                if task.file.rows is not None and result.rows != task.file.rows:
                    raise _Untrusted(f"counts {result.rows} rows, the metadata {task.file.rows}")
                outcome = FetchOutcome(result, size, retries=0)
            else:
                saw_quote = entry.get("saw_quote")
                if not isinstance(saw_quote, bool):
                    raise _Untrusted("does not hold a result")
                size = part.byte_range.end - part.byte_range.start
                outcome = FetchOutcome(result, size, retries=0, saw_quote=saw_quote)
        except _Untrusted as problem:
            self._ignore(key, problem, task.label)
            return None
        self._hold(task, key)
        return TaskResult(task, outcome, restored=True)

    # --- a source's notes (a FHIR export job's status URL) ------------------------------------

    def _note_key(self, name: str) -> str:
        fields = [FORMAT_VERSION, self.server_identity, "note", name]
        return hashlib.sha256(json.dumps(fields).encode()).hexdigest()

    def recall(self, name: str) -> str | None:
        """The note saved under `name` for this server (None when there is none, or it cannot be
        trusted: then it is ignored with a warning)."""
        key = self._note_key(name)
        try:
            entry = self._read(key)
            if entry is None:
                return None
            value = entry.get("note")
            if not isinstance(value, str):
                raise _Untrusted("does not hold a note")
        except _Untrusted as problem:
            self._warn(f"checkpoint {self._path(key)} {problem}: ignored")
            return None
        return value

    def remember(self, name: str, value: str) -> None:
        """Save a note under `name` (atomically, like a result), so a rerun finds it."""
        self._write({"key": self._note_key(name), "name": name, "note": value})

    def forget(self, name: str) -> None:
        """Remove the note saved under `name`, if any."""
        with contextlib.suppress(OSError):
            self._path(self._note_key(name)).unlink()

    def record(self, done: TaskResult) -> None:
        """Save a finished task's result. A whole file's makes its parts' entries unneeded."""
        task = done.task
        key = self._key(task)
        entry = self._entry(key, task, done.outcome.result)
        part = task.part
        if part is None:
            entry["bytes"] = done.outcome.bytes
        else:
            entry["part"] = [part.byte_range.start, part.byte_range.end]
            entry["saw_quote"] = done.outcome.saw_quote
        if self._write(entry):
            self._hold(task, key)
        if part is None:
            for path in self._parts.pop(task.file.id, set()):
                with contextlib.suppress(OSError):
                    path.unlink()

    def _hold(self, task: Task, key: str) -> None:
        """Note that the store holds this task's result for this run."""
        if task.part is None:
            self._downloads.add(task.file.id)
        else:
            self._parts.setdefault(task.file.id, set()).add(self._path(key))

    def _entry(self, key: str, task: Task, parsed: BodyResult[Any]) -> dict[str, Any]:
        return {
            "key": key,
            "export_id": task.file.export_id,  # for people reading the directory; the key decides
            "download_id": task.file.id,
            "rows": parsed.rows,
            "skipped": parsed.skipped,
            "skipped_lines": list(parsed.skipped_lines),
            "aggregate": self.aggregation.to_json(parsed.aggregate),
        }

    def _write(self, entry: dict[str, Any]) -> bool:
        """Write atomically (a temporary file in the directory, then a rename); False if not saved.

        The first failure (a full disk, a directory removed) is reported once and saving stops.
        """
        if not self._saving:
            return False
        entry = {**entry, "digest": _digest(entry)}
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=self.directory, prefix=TEMP_PREFIX, suffix=".tmp")
        except OSError as exc:
            return self._stop_saving(exc)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(entry, handle, ensure_ascii=False)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self._path(entry["key"]))
        except BaseException as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            if isinstance(exc, OSError):
                return self._stop_saving(exc)
            raise
        return True

    def _stop_saving(self, exc: OSError) -> bool:
        self._saving = False
        self._warn(
            f"cannot save checkpoints in {self.directory} ({exc.strerror or exc}): "
            "finished downloads are no longer kept for a rerun"
        )
        return False

    def discard(self, up_to: Path) -> None:
        """Remove every entry (and temporary file) in the directory, then the directories left
        empty from it up to, not including, `up_to`. Other files are left alone; nothing that
        cannot be removed is an error."""
        paths: list[Path] = []
        with contextlib.suppress(OSError):  # best effort: the answer is already out
            paths = list(self.directory.iterdir())
        for path in paths:
            is_entry = path.suffix == ".json" or path.name.startswith(TEMP_PREFIX)
            if is_entry and path.is_file():
                with contextlib.suppress(OSError):
                    path.unlink()
        self._downloads.clear()
        self._parts.clear()
        directory = self.directory
        while directory != up_to and up_to in directory.parents:
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent
