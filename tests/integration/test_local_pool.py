"""The local pool's worker processes: forked from the tool (Linux) or spawned, the same answer."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from export_tally.core.counts.parser import CountAggregator
from export_tally.core.counts.tally import Tally
from export_tally.scheduling.forked import CAN_FORK
from export_tally.scheduling.local_pool import LocalBackend, _Worker
from export_tally.scheduling.run import count_downloads
from export_tally.scheduling.tasks import RunOptions
from export_tally.transport.client import ClientOptions, make_client
from export_tally.transport.export_api import ExportApi, ExportApiSource

ROOT = Path(__file__).resolve().parents[2]
needs_fork = pytest.mark.skipif(not CAN_FORK, reason="workers are forked on Linux only")


@pytest.mark.parametrize(
    "fork", [pytest.param(True, marks=needs_fork), False], ids=["forked", "spawned"]
)
def test_forked_and_spawned_workers_count_the_same(server_url: str, fork: bool) -> None:
    options = ClientOptions(server_url)
    aggregation = CountAggregator()
    with make_client(options) as client:
        downloads = ExportApiSource(ExportApi(client, options), "demo").files()
    result = count_downloads(downloads, RunOptions(options, aggregation), LocalBackend(2, fork))
    assert isinstance(result.tally, Tally)
    report = aggregation.report(result.tally, precision=1)
    assert report == json.loads((ROOT / "demo.json").read_text())


@needs_fork
def test_a_forked_worker_keeps_no_socket_of_another() -> None:
    # Had the second kept a copy of the tool's end of the first one's socket, closing it here
    # would not reach the first as EOF, and the first would wait for tasks forever.
    first = _Worker(fork=True, others=[])
    second = _Worker(fork=True, others=[first.sock])
    try:
        first.sock.close()
        assert first.process.wait(timeout=30) == 0
        assert second.process.poll() is None
    finally:
        second.end(kill=True)
        second.reap()
        first.end(kill=True)
        first.reap()


@needs_fork
def test_a_forked_worker_that_does_not_exit_is_waited_for_no_longer_than_asked() -> None:
    worker = _Worker(fork=True, others=[])
    try:
        # Its socket is open: it waits for tasks, so it has not exited after a moment.
        with pytest.raises(subprocess.TimeoutExpired):
            worker.process.wait(timeout=0.05)
        assert worker.process.poll() is None
    finally:
        worker.end(kill=True)
        worker.reap()
    assert worker.process.returncode == -signal.SIGTERM
    worker.process.terminate()  # reaped: no signal goes to a pid that may be reused
