"""The result as JSON: the output contract, and the default format."""

from __future__ import annotations

import json
from typing import Any


def render_json(report: dict[str, Any]) -> str:
    """The output contract: 2-space indent, keys sorted at every level, a final newline."""
    return json.dumps(report, indent=2, sort_keys=True) + "\n"
