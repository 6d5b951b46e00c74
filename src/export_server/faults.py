"""Fault injection: answer some requests with errors, cut some bodies off mid-stream.

Decided and carried out here: `FaultInjector` decides each request's fault, `FaultMiddleware`
(which the app installs) asks it for every request and answers the failures, and `DroppedBody`,
the response that streams every body, cuts off the ones the decision says to. Routes of another
protocol (the FHIR routes) are a `RoutedFaults`: they say which of their requests faults reach,
and answer those failures in their own words (an OperationOutcome, once authorization is done).

Each request's fate is a pure function of (seed, method, path, Range header, how many times this
process has seen that request), so a seeded run misbehaves the same way every time, whatever the
interleaving of concurrent requests, and a client retrying a request meets a fresh decision.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from asyncio import FIRST_COMPLETED
from collections import Counter
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from enum import Enum

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from export_server.errors import GenerationError

log = logging.getLogger("export_server")

# Statuses a failing request gets; the first two carry a Retry-After header.
FAIL_STATUSES = (503, 429, 500)
RETRY_AFTER_STATUSES = (503, 429)


@dataclass(frozen=True)
class FaultConfig:
    """Rates are probabilities in [0, 1]; `seed` None means a fresh random seed per process.

    `retry_after` is the whole number of seconds a 503 or 429 asks the client to wait.
    """

    fail_rate: float = 0.0
    drop_rate: float = 0.0
    seed: int | None = None
    retry_after: int = 1

    @property
    def enabled(self) -> bool:
        return self.fail_rate > 0 or self.drop_rate > 0

    def retry_headers(self, status: int) -> dict[str, str]:
        """The headers a failed request's answer with `status` carries: Retry-After for a 503 or
        429."""
        return {"Retry-After": str(self.retry_after)} if status in RETRY_AFTER_STATUSES else {}


@dataclass(frozen=True)
class Fault:
    """What to do to one request: fail it with `status`, or cut its body after `drop_after` bytes."""

    status: int | None = None
    drop_fraction: float | None = None

    def drop_point(self, length: int) -> int | None:
        """How many bytes of a `length`-byte body to send before cutting it off, if at all."""
        if self.drop_fraction is None or length <= 1:
            return None
        return 1 + int(self.drop_fraction * (length - 1))


NO_FAULT = Fault()


def _unit(digest: bytes, index: int) -> float:
    """The index-th 8-byte slice of a digest as a float in [0, 1)."""
    return int.from_bytes(digest[8 * index : 8 * index + 8], "big") / 2.0**64


class FaultInjector:
    """Decides each request's fault; keeps only a per-process count of requests seen."""

    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self._seed = config.seed if config.seed is not None else int.from_bytes(os.urandom(8))
        self._seen: Counter[tuple[str, str, str]] = Counter()

    def decide(self, method: str, path: str, range_header: str | None, *, body: bool) -> Fault:
        """The fault for this request; `body` says whether it streams a download (may be cut)."""
        if not self.config.enabled:
            return NO_FAULT
        key = (method, path, range_header or "")
        occurrence = self._seen[key]
        self._seen[key] += 1
        text = f"{self._seed}\0{method}\0{path}\0{range_header or ''}\0{occurrence}"
        digest = hashlib.sha256(text.encode()).digest()
        if _unit(digest, 0) < self.config.fail_rate:
            return Fault(status=FAIL_STATUSES[digest[-1] % len(FAIL_STATUSES)])
        if body and _unit(digest, 1) < self.config.drop_rate:
            return Fault(drop_fraction=_unit(digest, 2))
        return NO_FAULT


class DroppedBody(StreamingResponse):
    """Streams a body and, when a fault says so, aborts the connection partway.

    Returning without the final body message makes the server close the connection, so the client
    sees an incomplete body, never a clean end. A body that cannot be generated ends the same way.
    The chunks are closed as soon as the response ends, however it ends (a client that hangs up
    included: the stream is cancelled then), so that their generation stops.
    """

    def __init__(
        self, chunks: AsyncGenerator[bytes | memoryview, None], headers: dict[str, str],
        status_code: int, drop_after: int | None, *, media_type: str,
    ) -> None:  # fmt: skip
        super().__init__(chunks, status_code=status_code, headers=headers, media_type=media_type)
        self.chunks = chunks
        self.drop_after = drop_after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Stream the body while watching for the client to hang up, which cancels the stream.

        What StreamingResponse does, with asyncio tasks instead of an anyio task group: the first
        use of one imports anyio's asyncio backend, 70 ms of compiling that the bundled server's
        first body waited for.
        """
        streaming = asyncio.create_task(self.stream_response(send))
        hanging_up = asyncio.create_task(self.listen_for_disconnect(receive))
        try:
            done, _ = await asyncio.wait((streaming, hanging_up), return_when=FIRST_COMPLETED)
        finally:
            streaming.cancel()
            hanging_up.cancel()
            await asyncio.gather(streaming, hanging_up, return_exceptions=True)
        for task in done:
            error = None if task.cancelled() else task.exception()
            if error is not None:
                raise error

    async def stream_response(self, send: Send) -> None:
        try:
            await self._send_body(send)
        except GenerationError as exc:
            log.warning("body cut off: %s", exc)
        finally:
            # Synchronous clean-up only, so it completes even inside a cancelled task.
            await self.chunks.aclose()

    async def _send_body(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        sent = 0
        async for chunk in self.chunks:
            if self.drop_after is not None and sent + len(chunk) >= self.drop_after:
                await send(
                    {
                        "type": "http.response.body",
                        "body": chunk[: self.drop_after - sent],
                        "more_body": True,
                    }
                )
                log.info("fault injection: dropped a body after %d bytes", self.drop_after)
                return
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            sent += len(chunk)
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class Reach(Enum):
    """What injected faults may do to a request."""

    NONE = "none"  # nothing: it is answered as if there were no faults
    FAIL = "fail"  # fail it
    CUT = "cut"  # fail it, or cut its body off


@dataclass(frozen=True)
class RoutedFaults:
    """Routes under `prefix` that say what faults reach each request (`reach(method, path)`) and
    answer a failure themselves, from `fault_of`, in their protocol's words."""

    prefix: str
    reach: Callable[[str, str], Reach]


class FaultMiddleware:
    """Pure ASGI middleware (not BaseHTTPMiddleware, which would finish a body we mean to cut).

    Every request but those of `routed` may fail, and a CSV body (`.../data`) be cut; a failure
    is answered here, as JSON. For `routed` paths, their `reach` says, and the route answers.
    """

    def __init__(
        self, app: ASGIApp, injector: FaultInjector, routed: Sequence[RoutedFaults] = ()
    ) -> None:
        self.app = app
        self.injector = injector
        self.routed = routed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        method: str = scope["method"]
        own = next((routed for routed in self.routed if path.startswith(routed.prefix)), None)
        if own is not None:
            reach = own.reach(method, path)
        else:
            reach = Reach.CUT if path.endswith("/data") else Reach.FAIL
        if reach is Reach.NONE:
            await self.app(scope, receive, send)
            return
        range_header = Headers(scope=scope).get("range")
        fault = self.injector.decide(method, path, range_header, body=reach is Reach.CUT)
        if fault.status is not None and own is None:
            headers = self.injector.config.retry_headers(fault.status)
            response = JSONResponse({"detail": "injected fault"}, fault.status, headers=headers)
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["fault"] = fault  # read back by `fault_of`
        await self.app(scope, receive, send)


def fault_of(request: Request) -> Fault:
    """The fault FaultMiddleware decided for this request (NO_FAULT where it is not installed)."""
    fault: Fault = getattr(request.state, "fault", NO_FAULT)
    return fault
