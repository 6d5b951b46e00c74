"""Shared fixtures: real servers for the test session, and what keeps the fast tier fast.

Every server a test run starts shares one temporary cache directory (`server_cache_dir`), so a
body is generated once per run and served from disk afterwards. The session server prewarms
`demo` in the background as soon as it starts; `warm_server` waits for that. `small` is generated
only for the slow tests that ask for it (`warm_small_server`).

`uv run pytest` runs the fast tier (`addopts` deselects `slow`); `uv run pytest -m slow` the rest.
Both run on pytest-xdist workers, each a session of its own with its own session servers.

No test writes into the developer's cache directory: every test gets its own XDG_CACHE_HOME (the
tool keeps checkpoints there by default, and a server without --cache-dir its bodies).
"""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.support.servers import Reaper, RunningServer, StartServer, running_server

PREWARMED = ("demo",)

# Bytecode caches for this process and every process the tests start (servers, the tool, its
# workers: each imports the project afresh). Where PYTHONDONTWRITEBYTECODE is set, each of them
# would compile the project and the tests from source, a third of the fast tier's CPU. The caches
# go to __pycache__ folders, which git ignores.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False


@pytest.fixture(scope="session", autouse=True)
def _spawned_processes_skip_pytest() -> Iterator[None]:
    """Keep the tool's worker processes from importing pytest.

    A process started with multiprocessing's "spawn" method first runs the parent's `__main__`
    again. In a real run that is the `cli` script (a few lines); under pytest it is pytest's own
    script, hundreds of milliseconds of imports per worker, and the tests start hundreds of
    workers. Without a `__main__` file or module to run, spawned processes import only what their
    task needs, as in a real run. (A pytest-xdist worker's `__main__` has no file anyway; this
    matters for `-n 0` and for `coverage run -m pytest`.)
    """
    main = sys.modules["__main__"]
    with pytest.MonkeyPatch.context() as patch:
        patch.delattr(main, "__file__", raising=False)
        patch.setattr(main, "__spec__", None, raising=False)
        yield


@pytest.fixture(scope="session")
def reaper() -> Iterator[Reaper]:
    """Waits, at the end of the session, for the servers that tests have stopped."""
    stopping = Reaper()
    yield stopping
    stopping.wait_all()


@pytest.fixture(autouse=True)
def user_cache_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """This test's user cache directory (XDG_CACHE_HOME, inherited by the processes it starts)."""
    directory = tmp_path_factory.mktemp("user-cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(directory))
    return directory


@pytest.fixture(scope="session")
def server_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cache directory shared by every server of this test run.

    Under pytest-xdist each worker is a session of its own; they share the directory too (the
    cache is made for servers sharing it), so `small` is generated once per run, not per worker.
    """
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's directory; each worker's own is below it
    path = root / "server-cache"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="session")
def server(server_cache_dir: Path) -> Iterator[RunningServer]:
    """The plain server, shared by every test that only reads from it.

    It answers at once; `demo` is being generated into the shared cache in the background (a
    request for a body not yet cached joins its generation: same bytes, just not yet at disk
    speed). Use `warm_server` when that matters.
    """
    args = ("--prewarm", ",".join(PREWARMED))
    with running_server(args, cache_dir=server_cache_dir) as running:
        yield running


@pytest.fixture(scope="session")
def warm_server(server: RunningServer) -> RunningServer:
    """The session server once both `demo` bodies are in the shared cache."""
    server.wait_for_line(r"^prewarm: done")
    return server


@pytest.fixture(scope="session")
def server_url(server: RunningServer) -> str:
    """The session server's base URL, e.g. `http://127.0.0.1:54321`."""
    return server.url


@pytest.fixture(scope="session")
def server_with(warm_server: RunningServer, server_cache_dir: Path) -> Iterator[StartServer]:
    """`server_with(*flags)`: the session's one server with these flags, started on first use.

    For servers whose answers do not depend on what earlier tests asked: `--no-range`, or
    `--prewarm`. A fault-injecting server counts the requests it has seen, so a shared one gives a
    test a different fault pattern depending on the tests before it: use `start_server` when a
    test needs exactly its seed's pattern. The servers share the session's cache, warm for `demo`.
    """
    started: dict[tuple[str, ...], RunningServer] = {}
    with ExitStack() as stack:

        def start(*args: str) -> RunningServer:
            if args not in started:
                started[args] = stack.enter_context(
                    running_server(args, cache_dir=server_cache_dir)
                )
            return started[args]

        yield start


@pytest.fixture(scope="session")
def warm_small_server(server_with: StartServer, server_cache_dir: Path) -> RunningServer:
    """A server of the session once every body of `demo` and `small` is in the shared cache.

    For slow tests only: generating `small` (7 million rows) takes tens of seconds on two cores.
    Request it before `start_server` too when those servers will stream `small`: they share the
    cache, so they start warm instead of generating `small` again.
    """
    # One worker generates `small` while the others wait; then their servers find it cached.
    with (server_cache_dir / "small.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        running = server_with("--prewarm", "demo,small")
        running.wait_for_line(r"^prewarm: done")
    return running


@pytest.fixture
def start_server(
    warm_server: RunningServer, server_cache_dir: Path, reaper: Reaper
) -> Iterator[StartServer]:
    """Start extra servers with their own flags (faults, --no-range); stopped after the test
    (told to stop: the next test does not wait for them to finish shutting down).

    They use the session's shared cache directory unless the flags say `--cache-dir DIR` or
    `--no-cache`; `demo` is already in it, so no test pays for generating it twice.
    """
    with ExitStack() as stack:

        def start(*args: str) -> RunningServer:
            return stack.enter_context(
                running_server(args, cache_dir=server_cache_dir, reaper=reaper)
            )

        yield start
