"""A worker's loop over its socket, run in this process: progress, results and errors."""

from __future__ import annotations

import pickle
import socket
import threading
from collections.abc import Callable
from typing import Any

from export_tally.scheduling import wire
from export_tally.scheduling.worker import serve


def run_one(run: Callable[..., Any]) -> list[tuple[int, bytes]]:
    """Every message a worker sends for one task run by `run`, until it sees EOF."""
    ours, theirs = socket.socketpair()
    loop = threading.Thread(target=serve, args=(theirs, run))
    loop.start()
    with ours:
        ours.sendall(wire.encode(wire.TASK, pickle.dumps(("options", "task"))))
        messages = []
        while (message := wire.receive(ours)) is not None:
            messages.append(message)
            if message[0] in (wire.RESULT, wire.ERROR):
                break
    loop.join()
    theirs.close()
    return messages


def progress_of(messages: list[tuple[int, bytes]]) -> list[int]:
    return [wire.ROWS.unpack(p)[0] for kind, p in messages if kind == wire.PROGRESS]


def test_progress_is_sent_in_few_messages_and_all_of_it_before_the_result() -> None:
    def run(options: Any, task: Any, report: Callable[[int], None], on_outage: Any) -> str:
        for _ in range(10_000):
            report(3)
        report(-1)  # a restart takes rows back
        return "done"

    messages = run_one(run)
    assert messages[-1] == (wire.RESULT, pickle.dumps("done"))
    progress = progress_of(messages)
    assert sum(progress) == 29_999
    assert len(progress) < 100  # 10,000 reports within a few 0.1 s windows


def test_progress_is_all_sent_before_an_error() -> None:
    def run(options: Any, task: Any, report: Callable[[int], None], on_outage: Any) -> str:
        report(7)
        report(5)
        raise ValueError("broken")

    messages = run_one(run)
    assert messages[-1][0] == wire.ERROR
    assert sum(progress_of(messages)) == 12
