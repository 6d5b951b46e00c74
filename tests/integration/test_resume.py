"""Dropped connections, through the real retrying loop: wherever the cuts fall, the count is exact.

A fixture server breaks successive answers off after chosen numbers of bytes. fetch_whole
(driver.drive with fetch's exchange, over a real httpx client) must resume at exactly the first
byte not yet fed when the server offers ranges (the parser just goes on, mid-line,
mid-quoted-field, between CR and LF), or start again from byte 0 with a fresh parser when it does
not; fetch_range must resume at the next unread byte of its range. Either way the result must equal
the stdlib's count of the whole body.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from export_tally.core.counts.parser import CountAggregator
from export_tally.core.counts.tally import Key, Tally
from export_tally.core.csv.split import ByteRange, part_ranges
from export_tally.transport.client import ClientOptions, make_client
from export_tally.transport.export_api import download_file
from export_tally.transport.fetch import fetch_whole
from export_tally.transport.fetch_range import Splittable, fetch_range
from export_tally.transport.retry import RetryPolicy
from tests.support.fixture_server import Answer, csv_answer, fixture_server
from tests.unit.test_chunking_properties import dict_reader_counts, valid_bodies

DATA = "/api/export/x/d1/data"
MAX_CUTS = 4


@dataclass
class CuttingServer:
    url: str
    routes: dict[str, Answer]
    seen: list[tuple[str, dict[str, str]]]
    client: httpx.Client
    # Every cut is one failed attempt (no backoff): enough retries that the body always completes.
    options: ClientOptions


@pytest.fixture(scope="module")
def server() -> Iterator[CuttingServer]:
    """One fixture server for every example; each example puts its own body in `routes`."""
    routes: dict[str, Answer] = {}
    seen: list[tuple[str, dict[str, str]]] = []
    with fixture_server(routes, seen) as url:
        options = ClientOptions(url, policy=RetryPolicy(retries=MAX_CUTS + 1, base_delay=0.0))
        with make_client(options) as client:
            yield CuttingServer(url, routes, seen, client, options)


def counts(aggregate: Tally) -> dict[Key, int]:
    assert isinstance(aggregate, Tally)
    return dict(aggregate.counts)


def serve(server: CuttingServer, body: bytes, ranges: bool, cuts: list[int]) -> None:
    server.routes[DATA] = csv_answer(body, ranges=ranges, cuts=cuts)
    server.seen.clear()


def ranges_asked(server: CuttingServer) -> list[str | None]:
    return [headers.get("range") for _, headers in server.seen]


@st.composite
def cuts_within(draw: st.DrawFn, size: int, resumed: bool) -> list[int]:
    """Bytes each broken answer delivers: always short of the rest of the body (with `resumed`,
    answers continue where the last stopped; otherwise each starts at byte 0)."""
    cuts: list[int] = []
    offset = 0
    for _ in range(draw(st.integers(0, MAX_CUTS))):
        if offset >= size:
            break
        cut = draw(st.integers(0, size - offset - 1))
        cuts.append(cut)
        offset += cut if resumed else 0
    return cuts


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), valid_bodies(), st.booleans())
def test_a_cut_download_counts_like_the_stdlib(
    server: CuttingServer, data: st.DataObject, generated: tuple[bytes, int], ranges: bool
) -> None:
    body, rows = generated
    cuts = data.draw(cuts_within(len(body), resumed=ranges))
    serve(server, body, ranges, list(cuts))
    info = download_file("x", "d1", rows, "{}")

    result = fetch_whole(server.client, server.options, info, CountAggregator())

    assert result.result.rows == rows
    assert counts(result.result.aggregate) == dict_reader_counts(body)
    assert result.retries == len(cuts)
    if ranges:  # each attempt asks for exactly the first byte not yet fed
        offsets = [sum(cuts[:i]) for i in range(len(cuts) + 1)]
        assert ranges_asked(server) == [f"bytes={n}-" if n else None for n in offsets]
        assert result.restarts == 0
    else:  # never a Range; each cut throws the partial count away
        assert ranges_asked(server) == [None] * (len(cuts) + 1)
        assert (result.resumes, result.restarts) == (0, len(cuts))


HEADER = b"patient_id,event_time,event_type,value\n"
ROWS = st.lists(
    st.tuples(st.sampled_from(["A", "B", "Carol"]), st.sampled_from(["hr", "spo2"])),
    min_size=1,
    max_size=60,
)


def last_read(body: bytes, part: ByteRange) -> int:
    """...to the end of its last record (or of the line it starts in, when no record starts in
    its range): the offset after the last byte it needs. Every line of `body` ends with LF."""
    first_record = body.index(b"\n", part.start - 1) + 1
    if first_record >= part.end:
        return first_record
    return body.index(b"\n", max(first_record, part.end - 1)) + 1


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), ROWS, st.integers(2, 5))
def test_cut_parts_count_each_record_once(
    server: CuttingServer, data: st.DataObject, records: list[tuple[str, str]], wanted: int
) -> None:
    body = HEADER + b"".join(f"{p},t,{e},1\n".encode() for p, e in records)
    info = download_file("x", "d1", len(records), "{}")
    splittable = Splittable(HEADER, len(body), '"fixture"')
    ranges = part_ranges(len(HEADER), len(body), wanted, 1)
    aggregation = CountAggregator()
    results = []
    for index, part in enumerate(ranges):
        first = part.start - 1  # a part reads from the byte before its range...
        cuts = data.draw(cuts_within(last_read(body, part) - first, resumed=True))
        serve(server, body, True, list(cuts))
        label = f"download d1 part {index + 1}/{len(ranges)}"
        results.append(
            fetch_range(server.client, server.options, info, splittable, part, label, aggregation)
        )
        offsets = [first + sum(cuts[:i]) for i in range(len(cuts) + 1)]
        assert ranges_asked(server) == [f"bytes={n}-" for n in offsets]
    assert sum(r.result.rows for r in results) == len(records)
    assert counts(aggregation.merge([r.result.aggregate for r in results])) == dict_reader_counts(
        body
    )
