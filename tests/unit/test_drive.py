"""The one retrying loop, `drive()`, without sockets: answers come from `httpx.MockTransport`, time
from a clock the test owns. Status sequences, Retry-After, outages measured by the clock, and the
offsets a cut-off download resumes from. (The same loop over real sockets: tests/integration.)"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import httpx
import pytest

from export_tally.core.counts.parser import CountAggregator
from export_tally.errors import ServerUnreachableError
from export_tally.transport.client import ClientOptions
from export_tally.transport.driver import Exchange, drive
from export_tally.transport.export_api import download_file
from export_tally.transport.fetch import fetch_whole
from export_tally.transport.retry import Clock, OutageEvent, RetryPolicy

BASE = "http://mock.test"
Handler = Callable[[httpx.Request], httpx.Response]


class FakeClock:
    """Time that moves only when the loop waits; every wait is kept."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> Clock:
        return Clock(wall=self.time, monotonic=self.monotonic, sleep=self.sleep)


class _Text(Exchange[str]):
    """The simplest exchange: a 2xx answer's text."""

    def read(self, response: httpx.Response, attempt: int) -> str:
        return f"{response.read().decode()} (attempt {attempt})"


def answers(*statuses: int, headers: dict[str, str] | None = None) -> Handler:
    """A handler that answers these statuses in turn, then 200 `ok`."""
    queue = list(statuses)

    def handle(request: httpx.Request) -> httpx.Response:
        if queue:
            return httpx.Response(queue.pop(0), headers=headers, text="no")
        return httpx.Response(200, text="ok")

    return handle


def run(
    handler: Handler,
    policy: RetryPolicy | None = None,
    clock: FakeClock | None = None,
    outages: list[OutageEvent] | None = None,
    quick_connect: bool = False,
) -> str:
    options = ClientOptions(BASE, policy=policy or RetryPolicy())
    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        return drive(
            client, options, "/x", _Text(), quick_connect=quick_connect,
            on_outage=None if outages is None else outages.append, clock=(clock or FakeClock()).clock(),
        )  # fmt: skip


def test_transient_statuses_are_retried_until_an_answer() -> None:
    clock = FakeClock()
    assert run(answers(500, 429, 500), clock=clock) == "ok (attempt 4)"
    assert len(clock.sleeps) == 3


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (404, "GET http://mock.test/x answered HTTP 404"),
        (401, "the server refused the credentials (HTTP 401)"),
        (403, "the server refused the credentials (HTTP 403)"),
    ],
)
def test_a_final_status_is_not_retried(status: int, message: str) -> None:
    clock = FakeClock()
    with pytest.raises(ServerUnreachableError, match=re.escape(message)):
        run(answers(status), clock=clock)
    assert clock.sleeps == []


def test_the_retries_run_out_without_progress() -> None:
    clock = FakeClock()
    with pytest.raises(ServerUnreachableError, match=r"failed: HTTP 500, 3 attempts$"):
        run(answers(*[500] * 10), RetryPolicy(retries=2), clock)
    assert len(clock.sleeps) == 2


@pytest.mark.parametrize(("status", "seconds"), [(429, "7"), (503, "12")])
def test_retry_after_is_waited_for(status: int, seconds: str) -> None:
    clock = FakeClock()
    policy = RetryPolicy(base_delay=0.0)  # no backoff of its own: what is waited is Retry-After
    assert run(answers(status, headers={"Retry-After": seconds}), policy, clock) == "ok (attempt 2)"
    assert clock.sleeps == [float(seconds)]


def test_an_outage_is_waited_out_by_the_clock_and_told_twice() -> None:
    clock = FakeClock()
    down = 4

    def handle(request: httpx.Request) -> httpx.Response:
        nonlocal down
        if down:
            down -= 1
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, text="ok")

    outages: list[OutageEvent] = []
    assert run(handle, RetryPolicy(retries=0), clock, outages) == "ok (attempt 5)"
    assert len(clock.sleeps) == 4  # not counted against the retries: an outage has its clock
    assert outages == [OutageEvent(1000.0), OutageEvent(1000.0, clock.now)]


def test_an_outage_longer_than_max_outage_ends_the_request_when_it_is_up() -> None:
    clock = FakeClock()

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, text="down")  # a gateway: the server behind it is down

    policy = RetryPolicy(max_outage=30.0, outage_max_delay=5.0)
    outages: list[OutageEvent] = []
    with pytest.raises(ServerUnreachableError, match=r"unreachable for 30 s \(--max-outage 30\)"):
        run(handle, policy, clock, outages)
    assert clock.now - 1000.0 == pytest.approx(30.0)  # the last attempt when the time is up
    assert all(s <= 5.0 for s in clock.sleeps)
    assert outages == [OutageEvent(1000.0)]  # it never came back


def test_quick_connect_gives_up_after_its_short_delays() -> None:
    clock = FakeClock()

    def handle(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(ServerUnreachableError, match=r"^cannot reach http://mock.test \("):
        run(handle, clock=clock, quick_connect=True)
    assert clock.sleeps == [0.5, 1.0]


class _CutBody(httpx.SyncByteStream):
    """A body that breaks off after `keep` bytes (the connection dropped)."""

    def __init__(self, body: bytes, keep: int | None) -> None:
        self.body, self.keep = body, keep

    def __iter__(self) -> Iterator[bytes]:
        if self.keep is None:
            yield self.body
            return
        yield self.body[: self.keep]
        raise httpx.RemoteProtocolError("peer closed connection")


BODY = b"patient_id,event_time,event_type,value\n" + b"A,t,hr,1\nB,t,hr,2\nA,t,spo2,3\n" * 50


@pytest.mark.parametrize("ranges", [True, False], ids=["resumed", "restarted"])
def test_a_cut_download_resumes_at_the_first_byte_not_fed(ranges: bool) -> None:
    cuts = [100, 37, 1001]  # bytes each cut-off answer delivers
    asked: list[str | None] = []

    def handle(request: httpx.Request) -> httpx.Response:
        asked.append(request.headers.get("range"))
        start = int(asked[-1][6:-1]) if asked[-1] else 0
        keep = cuts[len(asked) - 1] if len(asked) <= len(cuts) else None
        headers = {"content-type": "text/csv", "etag": '"v1"'}
        if ranges:
            headers["accept-ranges"] = "bytes"
        if start:
            headers["content-range"] = f"bytes {start}-{len(BODY) - 1}/{len(BODY)}"
        return httpx.Response(206 if start else 200, headers=headers,
                              stream=_CutBody(BODY[start:], keep))  # fmt: skip

    file = download_file("x", "d1", BODY.count(b"\n") - 1, "{}")
    options = ClientOptions(BASE, policy=RetryPolicy(base_delay=0.0))
    with httpx.Client(transport=httpx.MockTransport(handle)) as client:
        outcome = fetch_whole(client, options, file, CountAggregator())
    assert outcome.result.rows == file.rows and outcome.bytes == len(BODY)
    assert outcome.retries == len(cuts)
    if ranges:
        assert asked == [None, "bytes=100-", "bytes=137-", "bytes=1138-"]
        assert (outcome.resumes, outcome.restarts) == (3, 0)
    else:
        assert asked == [None] * 4
        assert (outcome.resumes, outcome.restarts) == (0, 3)
