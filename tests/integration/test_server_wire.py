"""The server's answers, byte for byte: status line, headers (but Date) and body of every kind of
request, against a recording (`server_wire.json`).

The recording was made from the server as it was built on FastAPI, before the front moved to
plain Starlette; the front must stay a drop-in replacement: every error body (404, 405, the 422
of a download id that is not a UUID, with pydantic's exact wording), redirect, HEAD answer,
Range answer and injected fault. One deliberate difference: FastAPI listed the `Allow` of a 405
from its documentation pages (`/docs`, `/openapi.json`) in a set's order, which changed from one
process to the next; now it is always `GET, HEAD`, which the recording says. Record again (after a
deliberate change of the API) with

    uv run python -m tests.integration.test_server_wire
"""

from __future__ import annotations

import json
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.support.servers import RunningServer, StartServer, running_server
from tests.support.wire import Exchange, exchange

RECORDING = Path(__file__).with_name("server_wire.json")

ID = "f725622a-22ea-4acc-aab8-810ec8b5e2c6"
OTHER = "591ef21e-8a64-413a-b506-37a41cb6b896"
META = f"/api/export/demo/{ID}"
DATA = f"{META}/data"

# Download ids that are not UUIDs (as they go on the wire), one per kind of parse error.
BAD_IDS = [
    "not-a-uuid",  # a character that is not hex
    "123",  # all hex, too short
    ID.replace("-", "")[:-1],  # 31 hex digits
    ID.replace("-", "") + "0",  # 33
    ID + "0",  # a last group too long
    ID[:-1],  # a last group too short
    "f725622a2-2ea-4acc-aab8-810ec8b5e2c6",  # the first group too long
    "f725622a-22ea4-acc-aab8-810ec8b5e2c6",  # the second
    "f725622a-22ea-4acca-ab8-810ec8b5e2c6",  # the third
    "f725622a-22ea-4acc-aab88-10ec8b5e2c6",  # the fourth
    ID.replace("-", "", 1),  # four groups
    ID + "-0",  # six groups
    ID.replace("2", "g", 1),  # a non-hex letter in a hyphenated id
    "-" * 36,
    "%C3%A9",  # a character outside ASCII
    ID[:-1] + "%C3%A9",  # ... at the end of an id of the right length
    "%FF",  # a byte that is not UTF-8 (decoded as U+FFFD)
    "%7B" + ID,  # a brace not closed
    "%7B" + ID + "%7D0",
    "%7B" + ID.replace("-", "") + "%7D",  # braces around the simple form
    "urn:uuid:not-a-uuid",
    "urn:uuid:" + ID.replace("-", ""),
    "URN:UUID:" + ID,  # the prefix is case-sensitive
    "%20" + ID,
    ID + "%20",
    "0x" + ID.replace("-", "")[2:],
    ID.replace("-", "_"),
    "f725622a22ea4acc_ab8810ec8b5e2c6",  # Python's uuid.UUID would accept this one
    "+" + ID.replace("-", "")[1:],  # and this one
    "a" * 100,
    "00000000-0000-0000-0000-00000000000g",
    "x",
    "%00",
    "%22%5C",  # a quote and a backslash: escaped in the JSON
    "%E2%82%AC" * 12,  # 12 three-byte characters: 36 bytes
    # The uuid crate's quirks: only a character's low byte is looked at for the reason (U+0161
    # passes for `a`, U+012D for `-`), braces and `urn:uuid:` are looked into at some lengths.
    "%7B%7D",
    "%7Bx%7D",
    "%7B" + ID[:-2] + "%C5%A1%7D",
    "%7B" + ID + "0%7D",
    "urn:uuid:",
    "urn:uuid:" + ID[:-2] + "%C5%A1",
    "urn:uuid:" + ID + "0",
    "urn:uuid:%7B" + "a" * 34 + "%7D",
    "%7Burn:uuid:" + "a" * 25 + "%7D",
    "a" * 36,
    ID[:-2] + "%C5%A1",
    "%C5%A1" * 16,
    "%C4%AD" * 16,
    "a" * 45,
    "a" * 46,
]
# Spellings of a download id that do parse, and ids that are UUIDs but no download.
GOOD_IDS = [
    ID,
    ID.upper(),
    ID.replace("-", ""),
    ID.replace("-", "").upper(),
    "%7B" + ID + "%7D",
    "{" + ID + "}",
    "urn:uuid:" + ID,
    "urn:uuid:" + ID.upper(),
    "f725622a-22ea-4acc-aab8-810ec8b5e2C6",
    "00000000-0000-4000-8000-000000000000",
    "00000000-0000-0000-0000-000000000000",
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
    OTHER,
    "%66" + ID[1:],  # percent-encoded hex digit
]

PATHS = [
    "/api/export",
    "/api/export/",
    "/api/export?x=1",
    "/api/export/?x=1",
    "/api/export/demo",
    "/api/export/demo/",
    "/api/export/de%6Do",
    "/api/export/small",
    "/api/export/large",
    "/api/export/nope",
    "/api/export/nope/",
    "/api/export/%C3%A9",
    "/api/export/DEMO",
    f"/api/export/nope/{ID}",
    f"/api/export/nope/{ID}/data",
    "/api/export/nope/not-a-uuid",
    "/api/export/nope/not-a-uuid/data",
    f"/api/export/small/{ID}",
    f"/api/export/small/{ID}/data",
    f"{META}/",
    f"{DATA}/",
    f"{DATA}/x",
    f"{DATA}?x=1",
    "/api/export/demo//data",
    "/api/export//" + ID,
    "//api/export",
    "/api/export//",
    "/",
    "/api",
    "/api/",
    "/nope",
    "/nope/",
    "/favicon.ico",
    "/docs",
    "/docs/",
    "/redoc",
    "/openapi.json",
    "/docs/oauth2-redirect",
    *(f"/api/export/demo/{bad}{suffix}" for bad in BAD_IDS for suffix in ("", "/data")),
    *(f"/api/export/demo/{good}{suffix}" for good in GOOD_IDS for suffix in ("", "/data")),
]
METHOD_PATHS = [
    "/api/export",
    "/api/export/",
    "/api/export/demo",
    "/api/export/nope",
    META,
    DATA,
    "/api/export/demo/not-a-uuid",
    "/api/export/demo/not-a-uuid/data",
    "/docs",
    "/openapi.json",
    "/nope",
]
METHODS = ["HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"]

RANGES = [
    "bytes=0-9", "bytes=10-", "bytes=-10", "bytes=0-0", "bytes=-0", "bytes=5-2", "bytes=0-1,5-6",
    "bytes=99999999-", "bytes=182000-", "bytes=0-99999999", "garbage", "bytes = 3 - 4",
    "items=0-1",
]  # fmt: skip


def plain_exchanges() -> list[Exchange]:
    exchanges = [Exchange("GET", path) for path in PATHS]
    exchanges += [Exchange(m, path) for path in METHOD_PATHS for m in METHODS]
    exchanges += [Exchange("GET", DATA, (("Range", spec),)) for spec in RANGES]
    exchanges += [Exchange("HEAD", DATA, (("Range", "bytes=0-9"),))]
    exchanges += [
        Exchange("GET", DATA, (("Range", "bytes=0-9"), ("If-Range", etag)))
        for etag in ('"b0fda09c5d32a31aebdb0dd36240162e"', '"nope"', "nope", "")
    ]
    exchanges += [
        Exchange("POST", "/api/export", (("Content-Type", "application/json"),), b"{}"),
        Exchange("POST", f"/api/export/demo/{ID}/data", (("Content-Type", "text/plain"),), b"x" * 100),
        Exchange("GET", "/api/export", (("Accept", "text/html"),)),
        Exchange("GET", "/api/export", (("Origin", "http://example.com"),)),
        Exchange("OPTIONS", "/api/export", (("Origin", "http://example.com"), ("Access-Control-Request-Method", "GET"))),
    ]  # fmt: skip
    return exchanges


def fault_exchanges() -> list[Exchange]:
    paths = ["/api/export", "/api/export/demo", META, DATA, "/nope", "/api/export/demo/x", META]
    return [Exchange("GET", path) for path in paths * 3] + [Exchange("POST", "/api/export")]


def drop_exchanges() -> list[Exchange]:
    return [Exchange("GET", DATA), Exchange("GET", DATA, (("Range", "bytes=100-5000"),))] * 3 + [
        Exchange("GET", META),
        Exchange("GET", f"/api/export/demo/{OTHER}/data"),
    ]


def no_range_exchanges() -> list[Exchange]:
    return [
        Exchange("GET", DATA),
        Exchange("GET", DATA, (("Range", "bytes=0-9"),)),
        Exchange("HEAD", DATA),
        Exchange("GET", f"{DATA}/"),
        Exchange("GET", "/api/export/demo/not-a-uuid/data"),
    ]


SERVERS = {
    "plain": ((), plain_exchanges),
    "faults": (("--fail-rate", "1", "--retry-after", "7", "--fault-seed", "11"), fault_exchanges),
    "some-faults": (("--fail-rate", "0.5", "--fault-seed", "5"), fault_exchanges),
    "drops": (("--drop-rate", "1", "--fault-seed", "3"), drop_exchanges),
    "no-range": (("--no-range",), no_range_exchanges),
}


def answers(url: str, exchanges: list[Exchange]) -> list[dict[str, object]]:
    return [
        {"request": e.recorded(), **exchange(url, e).recorded()}
        for e in exchanges
    ]  # fmt: skip


def recorded(name: str) -> list[dict[str, object]]:
    recording: dict[str, list[dict[str, object]]] = json.loads(RECORDING.read_text())
    return recording[name]


@pytest.mark.parametrize("name", list(SERVERS))
def test_answers_are_the_recorded_bytes(
    name: str, start_server: StartServer, warm_server: RunningServer
) -> None:
    flags, exchanges = SERVERS[name]
    # A fault server counts the requests it has seen: each test starts its own.
    running = start_server(*flags) if flags else warm_server
    got = answers(running.url, exchanges())
    want = recorded(name)
    assert [g["request"] for g in got] == [w["request"] for w in want]
    for g, w in zip(got, want, strict=True):
        assert g == w


def record() -> None:
    """Write `server_wire.json` from this checkout's server (on a cache of its own)."""
    recording = {}
    with tempfile.TemporaryDirectory() as cache, ExitStack() as stack:
        for name, (flags, exchanges) in SERVERS.items():
            running = stack.enter_context(running_server(flags, cache_dir=Path(cache)))
            recording[name] = answers(running.url, exchanges())
            print(f"{name}: {len(recording[name])} answers", file=sys.stderr)
    RECORDING.write_text(json.dumps(recording, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    record()
