"""What the report says about a run: options without secrets, URLs without credentials, the
time span from the metadata, and each download's rows and recoveries."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from export_tally.cli.settings import Settings, parse
from export_tally.core.aggregation import BodyResult
from export_tally.core.counts.tally import Tally
from export_tally.render.report.facts import RunFacts, collect_facts, safe_url, shown_options
from export_tally.scheduling.results import DownloadResult
from export_tally.scheduling.run import ExportResult
from export_tally.transport.export_api import download_file
from export_tally.transport.shared_terms import RemoteFile


def settings(*argv: str) -> Settings:
    return parse(argv, {})


def info(download_id: str, rows: int, **metadata: object) -> RemoteFile:
    return download_file("x", download_id, rows, json.dumps({"rows": rows, **metadata}))


def result(download_id: str, rows: int, skipped: int = 0, **kwargs: object) -> DownloadResult:
    return DownloadResult(download_id, BodyResult(Tally(), rows, skipped, ()), 100, **kwargs)  # type: ignore[arg-type]


def test_only_the_options_given_are_shown_and_secrets_never() -> None:
    given = settings(
        "demo", "--token", "s3cret", "--header", "X-Api-Key: k3y", "--stats", "--no-progress",
        "--format", "csv", "--report", "r.html", "-j", "3",
        "--server", "https://user:pw@host.example:8443/base?key=abc",
    ).given  # fmt: skip
    shown = shown_options(given)
    text = " ".join(shown)
    assert "s3cret" not in text and "k3y" not in text and "pw" not in text and "abc" not in text
    assert shown == (
        "--server https://host.example:8443/base",
        "--format csv",
        "--report r.html",
        "--jobs 3",
        "--no-progress",
        "--stats",
        "--token (given, not shown)",
        "--header (given, not shown)",
    )
    assert shown_options(settings("demo").given) == ()


def test_an_option_given_its_default_value_is_not_shown() -> None:
    given = settings("demo", "--timeout", "30", "--max-outage", "120", "--format", "json").given
    assert shown_options(given) == ()


def test_what_the_program_resolved_is_never_shown_as_an_option(tmp_path: Path) -> None:
    """Only the options given on the command line, never the environment's or a resolved value."""
    environ = {"EXPORT_SERVER_URL": "http://h.example", "EXPORT_TALLY_IN_PROCESS_ROWS": "5",
               "EXPORT_SERVER_TOKEN": "s3cret"}  # fmt: skip
    chosen = parse(["demo", "--checkpoint-dir", str(tmp_path)], environ)
    assert (chosen.server_explicit, chosen.in_process_rows) == (True, 5)
    assert shown_options(chosen.given) == (f"--checkpoint-dir {tmp_path}",)


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("https://u:p@h.example/x?token=t#f", "https://h.example/x"),
        ("embedded-export-server/0.1.0", "embedded-export-server/0.1.0"),
    ],
)
def test_safe_url(url: str, safe: str) -> None:
    assert safe_url(url) == safe


def run_facts(infos: list[RemoteFile], results: list[DownloadResult]) -> RunFacts:
    return collect_facts(
        settings("x", "--stats", "--precision", "2"), infos, ExportResult(Tally(), tuple(results)), server="https://a:b@h/",
        version="9.9", made=datetime(2026, 1, 1, tzinfo=UTC), seconds=2.5,
    )  # fmt: skip


def test_facts_of_a_run() -> None:
    infos = [
        info("d1", 10, start_time="2025-08-26T00:00:00", end_time="2025-08-26T01:00:00"),
        info("d2", 5, start_time="2025-08-25T23:00:00", end_time="2025-08-26T00:30:00"),
        info("d3", 7, start_time="2025-08-26T02:00:00", end_time="2025-08-26T03:00:00"),
    ]
    results = [
        result("d1", 10, skipped=2, retries=3, resumes=2, restarts=1),
        result("d2", 5, parts=3),
        result("d3", 7, restored=True),
    ]
    facts = run_facts(infos, results)
    assert facts.server == "https://h/"
    assert facts.stats and facts.precision == 2
    assert facts.options == ("--stats", "--precision 2")
    assert facts.span == (datetime(2025, 8, 25, 23), datetime(2025, 8, 26, 3))
    assert facts.rows == 22
    d1, d2, d3 = facts.downloads
    assert (d1.rows_declared, d1.rows_counted, d1.skipped, d1.retries, d1.resumes, d1.restarts) == (
        10, 10, 2, 3, 2, 1,
    )  # fmt: skip
    assert (d2.retries, d2.parts) == (0, 3)  # three parts, each fetched once
    assert (d3.retries, d3.restored) == (0, True)


@pytest.mark.parametrize(
    "metadata",
    [
        pytest.param({}, id="no-times"),
        pytest.param({"start_time": "soon", "end_time": "later"}, id="not-times"),
        pytest.param({"start_time": 1, "end_time": 2}, id="numbers"),
    ],
)
def test_no_span_when_the_metadata_gives_none(metadata: dict[str, object]) -> None:
    facts = run_facts([info("d1", 1, **metadata)], [result("d1", 1)])
    assert facts.span is None


def test_naive_and_aware_times_mixed_give_no_span() -> None:
    infos = [
        info("d1", 1, start_time="2025-08-26T00:00:00", end_time="2025-08-26T01:00:00"),
        info("d2", 1, start_time="2025-08-26T00:00:00+00:00", end_time="2025-08-26T01:00:00Z"),
    ]
    results = [result("d1", 1), result("d2", 1)]
    assert run_facts(infos, results).span is None
