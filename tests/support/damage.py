"""Ways to damage a checkpoint entry on disk, for the tests that show damage is ignored, never
believed: cut short (not whole JSON), or one count altered (valid JSON, the same rows: only its
digest tells)."""

from __future__ import annotations

import json
from pathlib import Path


def truncate(path: Path) -> None:
    """The entry cut in half: no longer whole JSON."""
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def alter_a_count(path: Path) -> None:
    """One count of the entry's aggregate raised: still valid JSON with the same rows."""
    entry = json.loads(path.read_text(encoding="utf-8"))
    entry["aggregate"][0][2] += 1000
    path.write_text(json.dumps(entry), encoding="utf-8")
