"""Fault injection: answer some requests with errors, cut some bodies off mid-stream.

Each request's fate is a pure function of (seed, method, path, Range header, how many times this
process has seen that request), so a seeded run misbehaves the same way every time, whatever the
interleaving of concurrent requests, and a client retrying a request meets a fresh decision.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Fault:
    """What to do to one request: fail it with `status`, or cut its body after `drop_after` bytes."""

    status: int | None = None
    drop_fraction: float | None = None


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
