"""Shared fixtures: one real server per test session, and a factory for servers with faults."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest

from tests.servers import RunningServer, running_server


@pytest.fixture(scope="session")
def server() -> Iterator[RunningServer]:
    """The plain server, shared by every test that only reads from it."""
    with running_server() as running:
        yield running


@pytest.fixture(scope="session")
def server_url(server: RunningServer) -> str:
    return server.url


@pytest.fixture
def start_server() -> Iterator[Callable[..., RunningServer]]:
    """Start extra servers with their own flags (faults, --no-range); stopped after the test."""
    with ExitStack() as stack:

        def start(*args: str) -> RunningServer:
            return stack.enter_context(running_server(args))

        yield start
