"""Where the CPU goes on the cold path: `cli EXPORT` against a server whose cache is empty.

    uv run python -m benchmarks.bench_cpu [--export small] [--cli-args '-j 2']
    uv run python -m benchmarks.bench_cpu --cache-dir ~/.cache/export-tally/bodies   # warm

Starts our server on a free port with a fresh cache directory, then runs the tool against it once
(`python -m export_tally EXPORT --server URL`), so every body is generated while it is counted.
Prints the CPU seconds (user + system) spent during the tool's run by each kind of process:

  generators    the server's generator processes (they start with the first body)
  server front  the server's HTTP process
  tool workers  the tool's worker processes (they exit before the tool does)
  tool parent   the tool's own process

and the wall time of the run, with each kind's share of `wall x cores`, and the share of all of
them together: how busy they kept the machine. What every other process on the machine used in
the meantime is printed too: on a shared machine, the cores they took were not ours to keep busy.

The server's processes outlive the run, so their CPU is read before and after it, exactly. The
tool's processes all exit: its total (parent and workers together) is exact, from the rusage the
kernel reports when the tool is reaped; the workers' part is sampled every 20 ms (a worker's last
few milliseconds may be missed, and are counted in the parent's share instead).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable

import psutil

from benchmarks.bench_cli import ROOT, server

SAMPLE_SECONDS = 0.02


def machine_busy() -> float:
    """CPU seconds the whole machine has spent not idle, over all cores."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def with_role(processes: Iterable[psutil.Process], role: str) -> list[psutil.Process]:
    found = []
    for process in processes:
        try:
            if role in process.cmdline():
                found.append(process)
        except psutil.Error:
            continue
    return found


class Sampler:
    """The last CPU time seen of every generator and tool worker, every SAMPLE_SECONDS."""

    def __init__(self, front: psutil.Process, tool: psutil.Process) -> None:
        self.front = front
        self.tool = tool
        self.generators: dict[int, psutil.Process] = {}
        self.workers: dict[int, float] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._done.is_set():
            try:
                front_children = self.front.children()
                tool_children = self.tool.children()
            except psutil.Error:
                front_children, tool_children = [], []
            for process in with_role(front_children, "export_server.worker"):
                self.generators.setdefault(process.pid, process)
            for process in tool_children:  # its workers: the server is not the tool's here
                with contextlib.suppress(psutil.Error):  # it exited since: its last sample stands
                    self.workers[process.pid] = cpu(process)
            time.sleep(SAMPLE_SECONDS)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--export", default="small")
    parser.add_argument("--cli-args", default="", help="extra arguments for cli, e.g. '-j 2'")
    parser.add_argument(
        "--cache-dir", help="serve from this cache (warm it first) instead of a fresh one"
    )
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as fresh, server(args.cache_dir or fresh) as url:
        front = psutil.Process(next(p.pid for p in psutil.Process().children()
                                    if "export_server" in p.cmdline()))  # fmt: skip
        command = [sys.executable, "-m", "export_tally", args.export, "--server", url,
                   "--no-progress", *args.cli_args.split()]  # fmt: skip
        front_before = cpu(front)
        machine_before = machine_busy()
        started = time.perf_counter()
        tool = subprocess.Popen(command, stdout=subprocess.DEVNULL, cwd=ROOT)
        with Sampler(front, psutil.Process(tool.pid)) as sampler:
            _, status, usage = os.wait4(tool.pid, 0)
            wall = time.perf_counter() - started
            machine = machine_busy() - machine_before
        tool.returncode = os.waitstatus_to_exitcode(status)
        if tool.returncode != 0:
            raise SystemExit(f"cli failed with status {tool.returncode}")
        generators = sum(cpu(p) for p in sampler.generators.values())
        front_cpu = cpu(front) - front_before
    tool_total = usage.ru_utime + usage.ru_stime
    workers = sum(sampler.workers.values())
    rows = {
        f"generators ({len(sampler.generators)})": generators,
        "server front": front_cpu,
        f"tool workers ({len(sampler.workers)})": workers,
        "tool parent": tool_total - workers,
    }
    budget = wall * cores
    shown = " ".join(["cli", args.export, *args.cli_args.split()])
    state = f"cache {args.cache_dir}" if args.cache_dir else "cold (fresh cache)"
    print(f"{shown}, {state}: wall {wall:.1f} s on {cores} cores "
          f"(wall x cores = {budget:.1f} CPU s)")  # fmt: skip
    print(f"{'process kind':<18} {'CPU s':>7} {'share':>7}")
    for name, seconds in rows.items():
        print(f"{name:<18} {seconds:7.2f} {seconds / budget:7.0%}")
    busy = sum(rows.values())
    print(f"{'all':<18} {busy:7.2f} {busy / budget:7.0%}  (of wall x cores: kept busy)")
    others = max(0.0, machine - busy)
    print(f"{'other processes':<18} {others:7.2f} {others / budget:7.0%}  (not ours: the benchmark "
          "itself, and anything else running)")  # fmt: skip


if __name__ == "__main__":
    main()
