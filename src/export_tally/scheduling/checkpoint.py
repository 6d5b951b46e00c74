"""Checkpoints: each finished download's partial result, saved so a rerun can skip it.

An entry is keyed by everything that could make it wrong to reuse: the server's identity, the
export, the download id, the download's metadata as the server gave it, what is aggregated (the
kind of result and the bad-row mode) and a format version. A stale or corrupt entry is never used;
it is counted again and overwritten. Entries are JSON (not pickle), so a checkpoint directory
from elsewhere can be read without trusting it with code execution.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from typing import TYPE_CHECKING, Any

from export_tally.core.aggregation import BodyResult
from export_tally.core.errors import UsageError
from export_tally.transport.fetch import DownloadResult

if TYPE_CHECKING:
    from pathlib import Path

    from export_tally.core.aggregation import Aggregator
    from export_tally.transport.api import DownloadInfo

FORMAT_VERSION = 2


class CheckpointStore:
    """Saved results for one run's configuration, in a directory (created when missing)."""

    def __init__(self, directory: Path, server_identity: str, aggregation: Aggregator[Any]) -> None:
        self.directory = directory
        self.server_identity = server_identity
        self.aggregation = aggregation
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(
                f"cannot use checkpoint directory {directory}: {exc.strerror}"
            ) from exc
        if not os.access(directory, os.W_OK):
            raise UsageError(f"cannot use checkpoint directory {directory}: not writable")

    def _key(self, info: DownloadInfo) -> str:
        identity = json.dumps(
            [
                FORMAT_VERSION,
                self.server_identity,
                info.export_id,
                info.id,
                info.metadata,
                self.aggregation.key,
            ]
        )
        return hashlib.sha256(identity.encode()).hexdigest()

    def _path(self, info: DownloadInfo) -> Path:
        return self.directory / f"{self._key(info)}.json"

    def load(self, info: DownloadInfo) -> DownloadResult | None:
        """The saved result for this download, or None when there is none or it cannot be trusted."""
        try:
            entry = json.loads(self._path(info).read_text(encoding="utf-8"))
            if entry["key"] != self._key(info):
                return None
            result = BodyResult(
                self.aggregation.from_json(entry["aggregate"]),
                entry["rows"],
                entry["skipped"],
                tuple(entry["skipped_lines"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if result.rows != info.rows:
            return None
        return DownloadResult(info.id, result, entry["bytes"], attempts=0, restored=True)

    def save(self, info: DownloadInfo, download: DownloadResult) -> None:
        """Write the entry atomically: a temporary file in the directory, then a rename."""
        parsed = download.result
        entry: dict[str, Any] = {
            "key": self._key(info),
            "export_id": info.export_id,
            "download_id": info.id,
            "rows": parsed.rows,
            "skipped": parsed.skipped,
            "skipped_lines": list(parsed.skipped_lines),
            "bytes": download.bytes,
            "aggregate": self.aggregation.to_json(parsed.aggregate),
        }
        fd, temp = tempfile.mkstemp(dir=self.directory, prefix=".entry.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(entry, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self._path(info))
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
