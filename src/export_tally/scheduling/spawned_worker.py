"""A spawned worker of the local pool, where workers are not forked (see forked.py).

Run as `python -m export_tally.scheduling.spawned_worker FD PARENT_PID`, where FD is this
process's end of the Unix socket pair whose other end the tool holds; worker.py has the loop.
"""

from __future__ import annotations

import socket
import sys

from export_tally.scheduling.tasks import run_task
from export_tally.scheduling.worker import work


def main(argv: list[str]) -> int:
    fd, parent_pid = int(argv[0]), int(argv[1])
    return work(socket.socket(fileno=fd), parent_pid, run_task)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
