"""--format and --report end to end, in-process, against the session server (demo only) and
fixture servers for what the real one cannot serve (no events, hostile ids)."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from export_tally.cli.exitcodes import ExitCode
from tests.support.cli_run import Outcome, one_line, run_cli
from tests.support.fixture_server import export_routes, fixture_server
from tests.support.html_page import external_references, number, parse, tables
from tests.support.text_table import numbers_by_row

ROOT = Path(__file__).resolve().parents[2]
HEADER = "patient_id,event_time,event_type,value\n"
UNREACHABLE = "http://127.0.0.1:9"


def test_table_prints_the_json_numbers(server_url: str) -> None:
    expected: dict[str, Any] = json.loads((ROOT / "demo.json").read_text())
    outcome = run_cli("demo", "--server", server_url, "--format", "table")
    assert outcome.status == ExitCode.OK, outcome.stderr
    assert "\x1b" not in outcome.stdout  # not a terminal: no colour
    rows = numbers_by_row(outcome.stdout)
    types = sorted(expected["totals"])
    for patient_id, counts in expected["patients"].items():
        assert rows.pop(patient_id) == [*(counts[t] for t in types), sum(counts.values())]
    assert rows == {"totals": [*(expected["totals"][t] for t in types), 18784]}


def test_csv_rows_are_the_json(server_url: str) -> None:
    expected: dict[str, Any] = json.loads((ROOT / "examples" / "demo.stats.json").read_text())
    outcome = run_cli("demo", "--server", server_url, "--format", "csv", "--stats")
    assert outcome.status == ExitCode.OK, outcome.stderr
    rows = list(csv.DictReader(io.StringIO(outcome.stdout)))
    assert len(rows) == sum(len(types) for types in expected["patients"].values())
    for row in rows:
        stats = expected["patients"][row.pop("patient_id")][row.pop("event_type")]
        assert {k: json.loads(v) for k, v in row.items()} == stats


def test_format_json_is_the_default_byte_for_byte(server_url: str) -> None:
    explicit = run_cli("demo", "--server", server_url, "--format", "json")
    assert explicit.stdout == (ROOT / "demo.json").read_text()  # what the default prints


def test_csv_to_a_file(server_url: str, tmp_path: Path) -> None:
    target = tmp_path / "demo.csv"
    outcome = run_cli("demo", "--server", server_url, "--format", "csv", "-o", str(target))
    assert outcome.status == ExitCode.OK, outcome.stderr
    assert outcome.stdout == ""
    assert target.read_text().splitlines()[0] == "patient_id,event_type,count"
    assert [p.name for p in tmp_path.iterdir()] == ["demo.csv"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("no_color", "coloured"), [("", True), ("1", False)])
def test_colour_only_on_a_terminal_without_no_color(
    server_url: str, monkeypatch: pytest.MonkeyPatch, no_color: str, coloured: bool
) -> None:
    from export_tally.cli.command import main

    monkeypatch.setenv("NO_COLOR", no_color)
    monkeypatch.setenv("COLUMNS", "80")
    stdout, stderr = Terminal(), io.StringIO()
    status = main(["demo", "--server", server_url, "--format", "table"], stdout, stderr)
    assert status == ExitCode.OK, stderr.getvalue()
    assert ("\x1b[" in stdout.getvalue()) is coloured
    assert numbers_by_row(stdout.getvalue().replace("\x1b[1m", "").replace("\x1b[0m", ""))


def report_of(outcome: Outcome, path: Path) -> str:
    assert outcome.status == ExitCode.OK, outcome.stderr
    return path.read_text(encoding="utf-8")


def test_report_beside_the_normal_output(server_url: str, tmp_path: Path) -> None:
    target = tmp_path / "demo.html"
    outcome = run_cli("demo", "--server", server_url, "--stats", "--report", str(target))
    page = report_of(outcome, target)
    assert (
        outcome.stdout == (ROOT / "examples" / "demo.stats.json").read_text()
    )  # the output is unchanged
    assert f"wrote the report to {target}" in outcome.stderr
    root = parse(page)
    assert external_references(root) == []
    assert len(root.find_all("section", "chart")) == 3 + 3 * 2
    expected = json.loads(outcome.stdout)
    counts = next(t for t in tables(root) if t.caption.startswith("Events per patient"))
    for row in counts.rows:
        per_type = [number(c) for c in row[1:-1]]
        assert per_type == [expected["patients"][row[0]][t]["count"] for t in ("bp_dia", "bp_sys")]
    summary = root.find_all("dl", "summary")[0].text()
    assert server_url in summary and "--stats" in summary
    assert [p.name for p in tmp_path.iterdir()] == ["demo.html"]


def test_report_never_shows_the_token(server_url: str, tmp_path: Path) -> None:
    target = tmp_path / "r.html"
    outcome = run_cli(
        "demo", "--server", server_url, "--token", "s3cret-t0ken", "--report", str(target)
    )
    page = report_of(outcome, target)
    assert "s3cret-t0ken" not in page
    assert "--token (given, not shown)" in page


@pytest.mark.parametrize(
    ("place", "message"),
    [
        pytest.param(lambda tmp: [tmp / "missing" / "r.html"], "does not exist", id="no-such-directory"),
        pytest.param(lambda tmp: [tmp], "it is a directory", id="a-directory"),
        pytest.param(lambda tmp: [tmp / "same.json", "-o", tmp / "same.json"], "--report and -o both name", id="same-as-output"),
        pytest.param(lambda tmp: [tmp / "x" / ".." / "same.json", "-o", tmp / "same.json"], "--report and -o both name", id="same-file-spelt-otherwise"),
    ],
)  # fmt: skip
def test_bad_report_target_fails_before_any_download(
    tmp_path: Path, place: Any, message: str
) -> None:
    (tmp_path / "x").mkdir()
    # The server does not answer: exit 2 (not 3) shows the check came before any request.
    args = [str(a) for a in place(tmp_path)]
    outcome = run_cli("demo", "--server", UNREACHABLE, "--report", *args)
    assert outcome.status == ExitCode.USAGE, outcome.stderr
    assert message in one_line(outcome.stderr)
    assert outcome.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]


def test_report_without_its_libraries_says_how_to_install_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "vl_convert", None)  # what a missing package looks like
    outcome = run_cli("demo", "--server", UNREACHABLE, "--report", str(tmp_path / "r.html"))
    assert outcome.status == ExitCode.USAGE
    assert "uv sync --extra report" in one_line(outcome.stderr)


def test_a_failed_run_leaves_no_report_and_prints_nothing(tmp_path: Path) -> None:
    outcome = run_cli("demo", "--server", UNREACHABLE, "--report", str(tmp_path / "r.html"))
    assert outcome.status == ExitCode.UNREACHABLE
    assert outcome.stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_report_leaves_no_report_but_the_counts_are_out(
    server_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from export_tally.cli import command as cli

    def interrupted(*args: object) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_report", interrupted)
    outcome = run_cli("demo", "--server", server_url, "--report", str(tmp_path / "r.html"))
    assert outcome.status == ExitCode.INTERRUPTED
    assert set(outcome.json()) == {"patients", "totals"}  # written before the report is drawn
    assert list(tmp_path.iterdir()) == []


def test_no_events(tmp_path: Path) -> None:
    with fixture_server(export_routes("x", {"d1": HEADER})) as url:
        as_csv = run_cli("x", "--server", url, "--format", "csv")
        as_table = run_cli("x", "--server", url, "--format", "table", "--stats")
        report = tmp_path / "r.html"
        with_report = run_cli("x", "--server", url, "--report", str(report))
    assert as_csv.stdout == "patient_id,event_type,count\n"
    assert as_table.stdout.rstrip().splitlines()[-1] == "no events: the export has no rows"
    assert with_report.stdout == '{\n  "patients": {},\n  "totals": {}\n}\n'
    assert "No events" in parse(report_of(with_report, report)).text()


def test_hostile_ids_are_printed_as_themselves(tmp_path: Path) -> None:
    body = HEADER + "[/x],t,<b>hr</b>,1\n" + '"<script>alert(1)</script>",t,[bold]x,2\n'
    with fixture_server(export_routes("x", {"d1": body})) as url:
        as_table = run_cli("x", "--server", url, "--format", "table")
        report = tmp_path / "r.html"
        with_report = run_cli("x", "--server", url, "--report", str(report))
    rows = numbers_by_row(as_table.stdout)
    assert rows["[/x]"] == [1, 0, 1] and rows["<script>alert(1)</script>"] == [0, 1, 1]
    root = parse(report_of(with_report, report))
    assert root.find_all("script") == []
    counts = next(t for t in tables(root) if t.caption.startswith("Events per patient"))
    assert {row[0] for row in counts.rows} == {"[/x]", "<script>alert(1)</script>"}
