"""The straightforward generator: the per-row algorithm of docs/server.md, written literally.

This is the oracle the fast generator in `export_server.generate` must match byte for byte. It is
slow on purpose: every draw is the stdlib call the page names, every timestamp a datetime.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta

from export_server.dataset import EVENTS, Download


def oracle_lines(download: Download, limit: int | None = None) -> Iterator[bytes]:
    """The CSV body of `download`, header first, one encoded line at a time (at most `limit` rows)."""
    yield b"patient_id,event_time,event_type,value\n"
    spec = download.export
    rng = random.Random(download.id.bytes)
    step = timedelta(microseconds=spec.step_us)
    step_seconds = spec.step_us / 1_000_000
    t = download.start_time
    rows = download.rows if limit is None else min(limit, download.rows)
    for _ in range(rows):
        patient = rng.choice(download.patients)
        jitter = rng.uniform(0, step_seconds)
        event_type = rng.choice(spec.event_types)
        event = EVENTS[event_type]
        value = max(event.lo, min(event.hi, int(rng.gauss(event.mu, event.sigma))))
        ts = (t + timedelta(seconds=jitter)).isoformat()
        yield f"{patient},{ts}Z,{event_type},{value}\n".encode()
        t += step


def oracle_body(download: Download, limit: int | None = None) -> bytes:
    """The whole body (or its first `limit` rows) as one bytes object."""
    return b"".join(oracle_lines(download, limit))
