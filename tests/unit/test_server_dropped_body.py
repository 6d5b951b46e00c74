"""DroppedBody, the response that streams every CSV body, driven through ASGI: a client that hangs
up stops the stream (and so its generation), a drop cuts the body, and either way the chunks are
closed. (Whole bodies over HTTP: tests/integration/test_server_wire.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import pytest

from export_server.errors import GenerationError
from export_server.export_api_routes import CSV_MEDIA_TYPE as CSV
from export_server.faults import DroppedBody

CHUNK = b"x" * 10


class Endless:
    """Chunks without end, and whether they were closed."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.closed = False
        self.fail_after = fail_after

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        try:
            for count in range(10**9):
                if count == self.fail_after:
                    raise GenerationError("the generator process died")
                yield CHUNK
                await asyncio.sleep(0)
        finally:
            self.closed = True


async def respond(body: DroppedBody, hang_up_after: int | None = None) -> list[dict[str, Any]]:
    """The messages `body` sends; the client hangs up once it has `hang_up_after` of them."""
    sent: list[dict[str, Any]] = []
    gone = asyncio.Event()

    async def send(message: Any) -> None:
        sent.append(message)
        if len(sent) == hang_up_after:
            gone.set()

    async def receive() -> Any:
        await gone.wait()
        return {"type": "http.disconnect"}

    # A guard, not a measure: without it a stream that ignores the hang-up hangs the test run.
    await asyncio.wait_for(body({"type": "http"}, receive, send), 30)
    return sent


def test_a_client_that_hangs_up_stops_the_stream() -> None:
    source = Endless()
    sent = asyncio.run(
        respond(DroppedBody(source.chunks(), {}, 200, None, media_type=CSV), hang_up_after=5)
    )
    assert source.closed
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 200
    assert all(message.get("more_body") for message in sent[1:])  # never ended cleanly


def test_a_dropped_body_stops_partway_without_an_end() -> None:
    source = Endless()
    sent = asyncio.run(
        respond(DroppedBody(source.chunks(), {}, 206, drop_after=25, media_type=CSV))
    )
    assert source.closed
    assert [m["body"] for m in sent[1:]] == [CHUNK, CHUNK, CHUNK[:5]]
    assert all(m["more_body"] for m in sent[1:])


def test_a_body_that_cannot_be_generated_is_cut_off() -> None:
    source = Endless(fail_after=2)
    sent = asyncio.run(respond(DroppedBody(source.chunks(), {}, 200, None, media_type=CSV)))
    assert source.closed
    assert [m["body"] for m in sent[1:]] == [CHUNK, CHUNK]
    assert all(m["more_body"] for m in sent[1:])


def test_a_whole_body_ends_cleanly() -> None:
    async def three() -> AsyncGenerator[bytes, None]:
        for _ in range(3):
            yield CHUNK

    sent = asyncio.run(
        respond(DroppedBody(three(), {"Content-Length": "30"}, 200, None, media_type=CSV))
    )
    assert [m.get("body") for m in sent[1:]] == [CHUNK, CHUNK, CHUNK, b""]
    assert sent[-1]["more_body"] is False
    assert (b"content-length", b"30") in sent[0]["headers"]


def test_an_unexpected_error_reaches_the_server() -> None:
    async def broken() -> AsyncGenerator[bytes, None]:
        yield CHUNK
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        asyncio.run(respond(DroppedBody(broken(), {}, 200, None, media_type=CSV)))
