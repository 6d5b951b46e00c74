"""The exit statuses of the server's commands; documented in docs/server.md and pinned by a test."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """`uv run server` (and a generator process, which only ever exits with OK)."""

    OK = 0  # a normal stop, or the process that started it is gone
    USAGE = 2  # a bad option, an address that cannot be bound, a body-size table not current
    INTERRUPTED = 130  # Ctrl-C (SIGINT)


class SizesExit(IntEnum):
    """`python -m export_server.sizes`, the body-size table's maintenance command."""

    OK = 0
    WRONG = 1  # the table is stale, incomplete, malformed, or a size is wrong
    USAGE = 2  # a bad option (argparse's own status)
