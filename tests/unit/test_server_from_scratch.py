"""docs/server.md is enough to re-implement the data byte for byte.

Everything here follows that page alone, without `random`, `datetime` or `uuid`: the Mersenne
Twister and the `random.Random` methods as the page describes them, the derivation of the
downloads, the generation of a body, and the calendar arithmetic of the timestamps. It must agree
with the server on all 32 downloads' metadata and with the page's test vectors for both `demo`
bodies. If the page's description and the code drift apart, this fails.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import pytest

from export_server.dataset import EXPORTS, downloads_of

N = 624


class Twister:
    """MT19937 seeded as `random.Random(seed)` seeds it for a bytes seed, with its methods."""

    def __init__(self, seed: bytes) -> None:
        number = int.from_bytes(seed + hashlib.sha512(seed).digest(), "big")
        key = []
        while number:
            key.append(number & 0xFFFFFFFF)
            number >>= 32
        self._init_by_array(key or [0])
        self.gauss_next: float | None = None

    def _init_by_array(self, key: list[int]) -> None:
        mt = [19650218] + [0] * (N - 1)
        for i in range(1, N):
            mt[i] = (1812433253 * (mt[i - 1] ^ (mt[i - 1] >> 30)) + i) & 0xFFFFFFFF
        i, j = 1, 0
        for _ in range(max(N, len(key))):
            mt[i] = (
                (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1664525)) + key[j] + j
            ) & 0xFFFFFFFF
            i, j = i + 1, (j + 1) % len(key)
            if i >= N:
                mt[0], i = mt[N - 1], 1
        for _ in range(N - 1):
            mt[i] = ((mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1566083941)) - i) & 0xFFFFFFFF
            i += 1
            if i >= N:
                mt[0], i = mt[N - 1], 1
        mt[0] = 0x80000000
        self.mt, self.index = mt, N

    def uint32(self) -> int:
        if self.index >= N:
            mt = self.mt
            for k in range(N):
                y = (mt[k] & 0x80000000) | (mt[(k + 1) % N] & 0x7FFFFFFF)
                mt[k] = mt[(k + 397) % N] ^ (y >> 1) ^ (0x9908B0DF if y & 1 else 0)
            self.index = 0
        y = self.mt[self.index]
        self.index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C5680
        y ^= (y << 15) & 0xEFC60000
        return y ^ (y >> 18)

    def random(self) -> float:
        a, b = self.uint32() >> 5, self.uint32() >> 6
        return (a * 67108864.0 + b) / 9007199254740992.0

    def below(self, n: int) -> int:
        k = n.bit_length()
        r = self.uint32() >> (32 - k)
        while r >= n:
            r = self.uint32() >> (32 - k)
        return r

    def gauss(self, mu: float, sigma: float) -> float:
        z, self.gauss_next = self.gauss_next, None
        if z is None:
            x2pi = self.random() * 2 * math.pi
            g2rad = math.sqrt(-2.0 * math.log(1.0 - self.random()))
            z, self.gauss_next = math.cos(x2pi) * g2rad, math.sin(x2pi) * g2rad
        return mu + z * sigma


EVENTS = {
    "heart_rate": (75, 15, 30, 200), "spo2": (97, 2, 70, 100),
    "bp_sys": (120, 20, 60, 250), "bp_dia": (80, 15, 30, 150),
}  # fmt: skip
# downloads, min rows, max rows, event types, patient pool, step in microseconds
EXPORT_PARAMETERS = {
    "demo": (2, 5_000, 10_000, ["bp_sys", "bp_dia"], [f"P{i:03d}" for i in range(1, 5)], 7_000_000),
    "small": (10, 500_000, 1_000_000, ["heart_rate", "spo2"], [f"S{i:03d}" for i in range(1, 7)], 3_000_000),
    "large": (20, 5_000_000, 10_000_000, ["heart_rate", "spo2", "bp_sys", "bp_dia"],
              [f"L{i:03d}" for i in range(1, 21)], 300_000),
}  # fmt: skip
START = 1_756_166_400_000_000  # 2025-08-26T00:00:00 in microseconds since 1970-01-01T00:00:00
DAY = 86_400_000_000


@dataclass
class Derived:
    id: bytes
    rows: int
    patients: list[str]
    start: int
    end: int
    event_types: list[str]
    step: int


def uuid_text(raw: bytes) -> str:
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def iso(micros: int) -> str:
    """`datetime.isoformat()` of a naive time given in microseconds since 1970 (civil calendar)."""
    days, rest = divmod(micros, DAY)
    z = days + 719_468
    era, day_of_era = divmod(z, 146_097)
    year_of_era = (
        day_of_era - day_of_era // 1460 + day_of_era // 36524 - day_of_era // 146_096
    ) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    m = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * m + 2) // 5 + 1
    month = m + 3 if m < 10 else m - 9
    year = year_of_era + era * 400 + (1 if month <= 2 else 0)
    seconds, fraction = divmod(rest, 1_000_000)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    text = f"{year:04d}-{month:02d}-{day:02d}T{hours:02d}:{minutes:02d}:{seconds:02d}"
    return text + (f".{fraction:06d}" if fraction else "")


def derive(export_id: str) -> list[Derived]:
    count, lo, hi, event_types, pool, step = EXPORT_PARAMETERS[export_id]
    rng = Twister(export_id.encode())
    cursor, result = START, []
    for i in range(count):
        raw = bytearray(hashlib.sha256(f"{export_id}_{i}".encode()).digest()[:16])
        raw[6] = (raw[6] & 0x0F) | 0x40
        raw[8] = (raw[8] & 0x3F) | 0x80
        rows = lo + rng.below(hi - lo + 1)
        k = min(len(pool), 2 + rng.below(len(pool) - 1))
        left, patients = list(pool), []
        for taken in range(k):
            j = rng.below(len(left) - taken)
            patients.append(left[j])
            left[j] = left[len(left) - taken - 1]
        end = cursor + rows * step
        result.append(Derived(bytes(raw), rows, patients, cursor, end, event_types, step))
        cursor = end
    return result


def round_half_even(x: float) -> int:
    whole = math.floor(x)
    rest = x - whole
    return whole + 1 if rest > 0.5 or (rest == 0.5 and whole % 2 == 1) else whole


def body(download: Derived) -> bytes:
    rng = Twister(download.id)
    step_seconds = download.step / 1_000_000
    lines = ["patient_id,event_time,event_type,value\n"]
    t = download.start
    for _ in range(download.rows):
        patient = download.patients[rng.below(len(download.patients))]
        jitter = 0 + (step_seconds - 0) * rng.random()
        event_type = download.event_types[rng.below(len(download.event_types))]
        mu, sigma, lo, hi = EVENTS[event_type]
        value = max(lo, min(hi, int(rng.gauss(mu, sigma))))
        whole = math.floor(jitter)
        offset = whole * 1_000_000 + round_half_even((jitter - whole) * 1e6)
        lines.append(f"{patient},{iso(t + offset)}Z,{event_type},{value}\n")
        t += download.step
    return "".join(lines).encode()


@pytest.mark.parametrize("export_id", list(EXPORTS))
def test_every_download_is_derived_as_the_page_says(export_id: str) -> None:
    derived = [
        {
            "id": uuid_text(d.id), "rows": d.rows, "event_types": d.event_types,
            "patients": d.patients, "start_time": iso(d.start), "end_time": iso(d.end),
        }
        for d in derive(export_id)
    ]  # fmt: skip
    assert derived == [d.metadata() for d in downloads_of(export_id)]


@pytest.mark.parametrize(
    "index, size, digest",
    [
        (0, 391_899, "40c49c8163ce69902de6b955bf73dc67084e94dd22f296f8868d49317dd58bf7"),
        (1, 424_663, "64975b5e457b80b2a6ddd8081ee32b7260bb171066fd49bc433e18bd18a4433b"),
    ],
)
def test_demo_bodies_are_generated_as_the_page_says(index: int, size: int, digest: str) -> None:
    made = body(derive("demo")[index])
    assert len(made) == size
    assert hashlib.sha256(made).hexdigest() == digest
