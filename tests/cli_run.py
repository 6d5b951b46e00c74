"""Run the tool in-process with its streams captured, as the tests do."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

from export_tally.cli import main


@dataclass
class Outcome:
    status: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def run_cli(*argv: str) -> Outcome:
    stdout, stderr = io.StringIO(), io.StringIO()
    status = main(list(argv), stdout=stdout, stderr=stderr)
    return Outcome(status, stdout.getvalue(), stderr.getvalue())
