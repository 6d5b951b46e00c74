"""The tool's committed outputs (demo.json at the root, examples/*.stats.json), read as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def committed(name: str) -> dict[str, Any]:
    """The committed output at `name`, a path from the repository's root."""
    report: dict[str, Any] = json.loads((ROOT / name).read_text(encoding="utf-8"))
    return report
