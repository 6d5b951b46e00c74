"""Shared fixtures: one real server per test session, and a factory for servers with other flags.

Every server a test session starts shares one temporary cache directory (`server_cache_dir`), so a
body is generated once per session and served from disk afterwards. The session server prewarms
`demo` and `small` in the background as soon as it starts; `warm_server` waits for that.

No test writes into the developer's cache directory: every test gets its own XDG_CACHE_HOME (the
tool keeps checkpoints there by default, and a server without --cache-dir its bodies).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.servers import RunningServer, running_server

PREWARMED = ("demo", "small")


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
    """The cache directory shared by every server this session starts (`server`, `start_server`)."""
    return tmp_path_factory.mktemp("server-cache")


@pytest.fixture(scope="session")
def server(server_cache_dir: Path) -> Iterator[RunningServer]:
    """The plain server, shared by every test that only reads from it.

    It answers at once; `demo` and `small` are being generated into the shared cache in the
    background (a request for a body not yet cached joins its generation: same bytes, just not yet
    at disk speed). Use `warm_server` when that matters.
    """
    args = ("--prewarm", ",".join(PREWARMED))
    with running_server(args, cache_dir=server_cache_dir) as running:
        yield running


@pytest.fixture(scope="session")
def warm_server(server: RunningServer) -> RunningServer:
    """The session server once every body of `demo` and `small` is in the shared cache.

    Request it before `start_server` too when those servers will stream `small`: they share the
    cache, so they start warm instead of generating `small` again.
    """
    server.wait_for_line(r"^prewarm: done")
    return server


@pytest.fixture(scope="session")
def server_url(server: RunningServer) -> str:
    """The session server's base URL, e.g. `http://127.0.0.1:54321`."""
    return server.url


@pytest.fixture
def start_server(server_cache_dir: Path) -> Iterator[Callable[..., RunningServer]]:
    """Start extra servers with their own flags (faults, --no-range); stopped after the test.

    They use the session's shared cache directory unless the flags say `--cache-dir DIR` or
    `--no-cache`.
    """
    with ExitStack() as stack:

        def start(*args: str) -> RunningServer:
            return stack.enter_context(running_server(args, cache_dir=server_cache_dir))

        yield start
