"""A body of a megabyte or more read straight from the connection (transport/raw_body.py): the
same bytes as httpx's `iter_raw`, and every cut, stall or early end seen as httpx would see it,
so fetch_whole resumes or restarts exactly as it does through h11.

The fixture server breaks answers off after chosen numbers of bytes (or goes silent); bodies
here are above raw_body.MIN_BYTES, so the raw path is the one taken.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from export_tally.core.counts.parser import CountAggregator
from export_tally.core.counts.tally import Tally
from export_tally.core.csv.split import part_ranges
from export_tally.transport.client import ClientOptions, make_client
from export_tally.transport.export_api import download_file
from export_tally.transport.fetch import fetch_whole
from export_tally.transport.fetch_range import Splittable, fetch_range
from export_tally.transport.raw_body import MIN_BYTES, iter_body
from export_tally.transport.retry import RetryPolicy
from tests.support.fixture_server import Answer, csv_answer, fixture_server
from tests.unit.test_chunking_properties import dict_reader_counts

DATA = "/api/export/x/d1/data"
ROWS = 40_000
HEADER = b"patient_id,event_time,event_type,value\n"
BODY = HEADER + b"".join(
    f"P{i % 7},2025-08-26T00:00:{i % 60:02d},{('hr', 'spo2', 'bp')[i % 3]},{i}\n".encode()
    for i in range(ROWS)
)


@pytest.fixture(scope="module")
def routes() -> Iterator[tuple[dict[str, Answer], str]]:
    table: dict[str, Answer] = {}
    with fixture_server(table) as url:
        yield table, url


def client_options(url: str, timeout: float = 30.0) -> ClientOptions:
    return ClientOptions(url, timeout=timeout, policy=RetryPolicy(retries=5, base_delay=0.0))


def fetch(url: str, timeout: float = 30.0) -> tuple[Tally, int, int, int]:
    options = client_options(url, timeout)
    with make_client(options) as client:
        outcome = fetch_whole(
            client, options, download_file("x", "d1", ROWS, "{}"), CountAggregator()
        )
    assert isinstance(outcome.result.aggregate, Tally)
    return outcome.result.aggregate, outcome.retries, outcome.resumes, outcome.restarts


def test_the_body_is_big_enough_for_the_raw_path() -> None:
    assert len(BODY) >= MIN_BYTES  # else the tests below would only exercise h11


def test_the_raw_pieces_are_the_bytes_httpx_reads(routes: tuple[dict[str, Answer], str]) -> None:
    table, url = routes
    table[DATA] = csv_answer(BODY)
    with httpx.Client(base_url=url) as client, client.stream("GET", DATA) as response:
        pieces = list(iter_body(response, 64 * 1024))
    assert b"".join(pieces) == BODY
    assert len(pieces) > 1 and max(map(len, pieces[1:])) <= 64 * 1024


@pytest.mark.parametrize("ranges", [True, False], ids=["resumed", "restarted"])
@pytest.mark.parametrize(
    "cuts",
    [[1], [70_000], [len(BODY) - 1], [300_000, 1, 65_536]],
    ids=["first-byte", "mid", "last-byte", "three"],
)
def test_a_cut_raw_body_counts_every_row_once(
    routes: tuple[dict[str, Answer], str], cuts: list[int], ranges: bool
) -> None:
    table, url = routes
    if not ranges:
        cuts = [min(cut, len(BODY) - 1) for cut in cuts]
    table[DATA] = csv_answer(BODY, ranges=ranges, cuts=list(cuts))
    tally, retries, resumes, restarts = fetch(url)
    assert dict(tally.counts) == dict_reader_counts(BODY)
    assert retries == len(cuts)
    assert (resumes, restarts) == ((len(cuts), 0) if ranges else (0, len(cuts)))


def test_a_stalled_raw_body_times_out_and_is_retried(
    routes: tuple[dict[str, Answer], str],
) -> None:
    table, url = routes
    table[DATA] = csv_answer(BODY, stalls=1, stall_seconds=2)
    tally, retries, _, _ = fetch(url, timeout=0.3)
    assert dict(tally.counts) == dict_reader_counts(BODY)
    assert retries == 1


def test_cut_raw_parts_count_every_row_once(routes: tuple[dict[str, Answer], str]) -> None:
    table, url = routes
    table[DATA] = csv_answer(BODY, ranges=True, cuts=[5_000, 400_000, 1])
    info = download_file("x", "d1", ROWS, "{}")
    splittable = Splittable(HEADER, len(BODY), '"fixture"')
    aggregation = CountAggregator()
    options = client_options(url)
    with make_client(options) as client:
        results = [
            fetch_range(client, options, info, splittable, part, f"part {n}", aggregation)
            for n, part in enumerate(part_ranges(len(HEADER), len(BODY), 2, 1))
        ]
    assert sum(r.result.rows for r in results) == ROWS
    assert sum(r.retries for r in results) == 3
    merged = aggregation.merge([r.result.aggregate for r in results])
    assert dict(merged.counts) == dict_reader_counts(BODY)
