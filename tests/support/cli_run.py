"""Run the tool in-process with its streams captured, as the tests do; read its one-line errors."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

from export_tally.cli.command import main


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


def one_line(stderr: str) -> str:
    """The only line of `stderr` (an error is one line); fails showing all of it otherwise."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]
