"""Downloads split into byte ranges give exactly the answer of whole downloads; what only a part
can meet (the download changed, a range the server refuses) is a clear error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from export_tally.cli.exitcodes import ExitCode
from export_tally.cli.settings import IN_PROCESS_ROWS_VARIABLE
from export_tally.core.counts.parser import CountAggregator
from export_tally.core.csv.split import ByteRange
from export_tally.errors import ProtocolError
from export_tally.scheduling.tasks import Part, RunOptions, Task, count_task
from export_tally.transport.client import ClientOptions, make_client
from export_tally.transport.export_api import ExportApi, ExportApiSource
from export_tally.transport.fetch_range import Splittable, probe_splittable
from tests.support.cli_run import run_cli
from tests.support.fixture_server import csv_answer, export_routes, fixture_server

ROOT = Path(__file__).resolve().parents[2]
HEADER = "patient_id,event_time,event_type,value\n"


@pytest.fixture(autouse=True)
def worker_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """Splitting is for a pool of workers: these exports are small enough to be counted in the
    tool's own process, which never splits, unless the threshold says otherwise."""
    monkeypatch.setenv(IN_PROCESS_ROWS_VARIABLE, "0")


def test_local_split_matches_whole(server_url: str) -> None:
    whole = run_cli("demo", "--server", server_url)  # also makes sure the bodies are cached
    # Three workers for two downloads: each download is cut in two.
    split = run_cli("demo", "--server", server_url, "-j", "3", "--min-part-bytes", "50000")
    assert split.status == ExitCode.OK, split.stderr
    assert split.stdout == whole.stdout == (ROOT / "demo.json").read_text()
    assert "counted 2 download(s) in 4 byte-range parts" in split.stderr


def test_a_quoted_download_is_counted_again_whole() -> None:
    plain = HEADER + "".join(f"P{i % 3},t,hr,{i}\n" for i in range(300))
    quoted = HEADER + "".join(f'"Q,{i % 2}",t,"multi\nline",{i}\n' for i in range(300))
    routes = export_routes("x", {"d1": plain, "d2": quoted}, rows={"d2": 300})
    for name, body in (("d1", plain), ("d2", quoted)):
        routes[f"/api/export/x/{name}/data"] = csv_answer(body, ranges=True)
    with fixture_server(routes) as url:
        outcome = run_cli("x", "--server", url, "-j", "3", "--min-part-bytes", "500")
    assert outcome.status == ExitCode.OK, outcome.stderr
    report = outcome.json()
    assert report["totals"] == {"hr": 300, "multi\nline": 300}
    assert report["patients"]["Q,0"] == {"multi\nline": 150}
    assert "counted 1 download(s) in" in outcome.stderr


def test_a_download_with_one_quoted_part_is_counted_again_whole() -> None:
    # Only the last of the four parts holds a quote (a newline inside a field): that one part is
    # enough for the whole download to be counted again, or its records would be miscounted.
    body = HEADER + "".join(f"P{i % 3},t,hr,{i}\n" for i in range(300)) + '"Q\nX",t,hr,1\n'
    routes = export_routes("x", {"d1": body}, rows={"d1": 301})
    routes["/api/export/x/d1/data"] = csv_answer(body, ranges=True)
    with fixture_server(routes) as url:
        outcome = run_cli("x", "--server", url, "-j", "4", "--min-part-bytes", "500")
    assert outcome.status == ExitCode.OK, outcome.stderr
    report = outcome.json()
    assert report["totals"] == {"hr": 301}
    assert report["patients"]["Q\nX"] == {"hr": 1}
    assert "byte-range parts" not in outcome.stderr  # counted whole in the end


def test_parts_that_do_not_add_up_are_a_protocol_error() -> None:
    body = HEADER + "".join(f"P{i},t,hr,1\n" for i in range(100))
    routes = export_routes("x", {"d1": body}, rows={"d1": 101})
    routes["/api/export/x/d1/data"] = csv_answer(body, ranges=True)
    with fixture_server(routes) as url:
        outcome = run_cli("x", "--server", url, "-j", "4", "--min-part-bytes", "100")
    assert outcome.status == ExitCode.PROTOCOL
    assert "counted 100 rows" in outcome.stderr and "declares 101" in outcome.stderr


def test_a_bad_header_names_the_download_when_it_is_split() -> None:
    body = "patient_id,when,event_type,value\n" + "".join(f"P{i},t,hr,1\n" for i in range(100))
    routes = export_routes("x", {"d1": body})
    routes["/api/export/x/d1/data"] = csv_answer(body, ranges=True)
    with fixture_server(routes) as url:
        outcome = run_cli("x", "--server", url, "-j", "4", "--min-part-bytes", "1")
    assert outcome.status == ExitCode.PROTOCOL
    # Whichever part fails first says so, naming its download as a whole download's error does.
    pattern = r"download d1 part [1-4]/4: header lacks column\(s\) event_time"
    assert re.search(pattern, outcome.stderr), outcome.stderr


def test_a_part_of_a_download_that_changed_is_a_protocol_error(server_url: str) -> None:
    # The real server answers a Range whose If-Range is not its ETag with the whole new body.
    options = ClientOptions(server_url)
    with make_client(options) as client:
        info = ExportApiSource(ExportApi(client, options), "demo").files()[0]
        stale = Splittable(HEADER.encode(), 1000, '"stale"')
        task = Task(info, Part(stale, ByteRange(100, 200), 0, 2))
        message = f"download {info.id} part 1/2: the download changed during the run (ETag)"
        with pytest.raises(ProtocolError, match=re.escape(message)):
            count_task(client, RunOptions(options, CountAggregator()), task)


def test_a_part_the_server_refuses_to_serve_is_a_protocol_error(server_url: str) -> None:
    # A range from past the end of the body: the real server answers 416.
    options = ClientOptions(server_url)
    with make_client(options) as client:
        info = ExportApiSource(ExportApi(client, options), "demo").files()[0]
        splittable = probe_splittable(client, options, info)
        assert splittable is not None
        past_the_end = ByteRange(splittable.size + 1, splittable.size + 2)
        task = Task(info, Part(splittable, past_the_end, 1, 2))
        message = f"GET {server_url}{info.url}: the server refused to resume (HTTP 416)"
        with pytest.raises(ProtocolError, match=re.escape(message)):
            count_task(client, RunOptions(options, CountAggregator()), task)
