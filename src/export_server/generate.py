"""The fast generator: the exact bytes of SPEC.md's per-row algorithm, in far fewer operations.

The per-row draws must consume the `random.Random` stream exactly as `choice`, `uniform` and
`gauss` do, so they are inlined here with the stdlib's own arithmetic:
- `choice(seq)` is `seq[_randbelow(len(seq))]`, which draws `getrandbits(n.bit_length())` until the
  value is below n (rejection sampling; note the bit length of n, not of n - 1);
- `uniform(0, b)` is `0 + (b - 0) * random()`;
- `gauss` draws two `random()` values every other call and caches the second normal deviate.
Timestamps are integer microseconds instead of `datetime` objects: `timedelta(seconds=x)` keeps the
whole seconds exactly and rounds the fraction's microseconds half to even, which is what
`round()` does. The text of a timestamp is built from a cached minute prefix.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from math import cos, log, sin, sqrt, tau

from export_server.dataset import EVENTS, Download

HEADER = b"patient_id,event_time,event_type,value\n"
_EPOCH = datetime(1970, 1, 1)
_SECONDS = [f"{s:02d}" for s in range(60)]


def generate_chunks(download: Download, chunk_rows: int = 16_384) -> Iterator[bytes]:
    """The download's CSV body: the header, then blocks of up to `chunk_rows` encoded rows."""
    yield HEADER
    spec = download.export
    rng = random.Random(download.id.bytes)
    getrandbits = rng.getrandbits
    uniform01 = rng.random

    patients = [f"{p}," for p in download.patients]
    n_patients = len(patients)
    patient_bits = n_patients.bit_length()
    types = spec.event_types
    n_types = len(types)
    type_bits = n_types.bit_length()
    events = [EVENTS[name] for name in types]
    # Everything after the timestamp, for each event type and value: "Z,heart_rate,72\n".
    tails = [[f"Z,{e.name},{v}\n" for v in range(e.lo, e.hi + 1)] for e in events]
    params = [(e.mu, e.sigma, e.lo, e.hi) for e in events]

    step_us = spec.step_us
    step_seconds = step_us / 1_000_000
    t_us = (download.start_time - _EPOCH) // timedelta(microseconds=1)
    gauss_next: float | None = None
    minute = -1
    minute_prefix = ""

    remaining = download.rows
    while remaining:
        n = min(chunk_rows, remaining)
        remaining -= n
        lines: list[str] = []
        append = lines.append
        for _ in range(n):
            r = getrandbits(patient_bits)
            while r >= n_patients:
                r = getrandbits(patient_bits)
            patient = patients[r]

            jitter = step_seconds * uniform01()

            r = getrandbits(type_bits)
            while r >= n_types:
                r = getrandbits(type_bits)
            mu, sigma, lo, hi = params[r]

            if gauss_next is None:
                x2pi = uniform01() * tau
                g2rad = sqrt(-2.0 * log(1.0 - uniform01()))
                z = cos(x2pi) * g2rad
                gauss_next = sin(x2pi) * g2rad
            else:
                z = gauss_next
                gauss_next = None
            value = int(mu + z * sigma)
            if value < lo:
                value = lo
            elif value > hi:
                value = hi

            whole = int(jitter)
            ts_us = t_us + whole * 1_000_000 + round((jitter - whole) * 1e6)
            t_us += step_us

            seconds, micros = divmod(ts_us, 1_000_000)
            m, s = divmod(seconds, 60)
            if m != minute:
                minute = m
                minute_prefix = (_EPOCH + timedelta(minutes=m)).isoformat()[:-2]
            if micros:
                append(f"{patient}{minute_prefix}{_SECONDS[s]}.{micros:06d}{tails[r][value - lo]}")
            else:
                append(f"{patient}{minute_prefix}{_SECONDS[s]}{tails[r][value - lo]}")
        yield "".join(lines).encode()
