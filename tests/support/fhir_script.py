"""Scripted FHIR answers for unit tests: an httpx.MockTransport that replays a list, a fake clock.

No sockets and no real waiting: the client under test sleeps on `FakeClock`, which only moves its
own time forward and remembers each wait.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from export_tally.transport.client import ClientOptions
from export_tally.transport.retry import Clock, RetryPolicy

BASE = "https://fhir.example/r4"
STATUS = "https://fhir.example/r4/jobs/7"


class FakeClock:
    """A clock whose `sleep` returns at once, moving both of its times forward."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def read(self) -> float:
        return self.now

    @property
    def clock(self) -> Clock:
        return Clock(wall=self.read, monotonic=self.read, sleep=self.sleep)


def outcome(
    code: str, text: str = "", severity: str = "error", *, details: bool = False
) -> dict[str, Any]:
    issue: dict[str, Any] = {"severity": severity, "code": code}
    if text:
        issue.update({"details": {"text": text}} if details else {"diagnostics": text})
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def fhir_json(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status,
        content=json.dumps(body).encode(),
        headers={"Content-Type": "application/fhir+json", **(headers or {})},
    )


def manifest(**changes: Any) -> dict[str, Any]:
    """A valid completion manifest (two Observation files, one Patient file), with `changes`."""
    body: dict[str, Any] = {
        "transactionTime": "2026-12-06T13:30:32+00:00",
        "request": f"{BASE}/Patient/$export?_type=Patient,Observation",
        "requiresAccessToken": True,
        "output": [
            {"type": "Observation", "url": f"{BASE}/files/1.ndjson", "count": 10},
            {"type": "Observation", "url": f"{BASE}/files/2.ndjson"},
            {"type": "Patient", "url": f"{BASE}/files/3.ndjson", "count": 2},
        ],
        "error": [],
    }
    body.update(changes)
    return body


class Script:
    """Answers requests in order (the last one again once the list is used up); keeps them."""

    def __init__(self, *answers: httpx.Response | Callable[[httpx.Request], httpx.Response]):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        if callable(answer):
            return answer(request)
        # A fresh copy each time: an answer may be given again, and a response is read once.
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))


def options(max_outage: float = 60.0, retries: int = 2) -> ClientOptions:
    return ClientOptions(BASE, policy=RetryPolicy(retries=retries, max_outage=max_outage))
