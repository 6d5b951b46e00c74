"""Server text is only data, end to end: hostile patient ids and event types through every
--format, with --report, with and without --stats, against a fixture server; and a chart
renderer that fails or dies costs the report (exit 5), never the counts.

The fast tier runs the worst case once per (format, --stats) pair, three of them with --report
(each starts the chart renderer); the slow tier lets Hypothesis draw many more, all with --report.
"""

from __future__ import annotations

import csv
import io
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from export_tally.cli.exitcodes import ExitCode
from export_tally.render.formats import exact_text
from tests.support.cli_run import Outcome, one_line, run_cli
from tests.support.fixture_server import export_routes, fixture_server
from tests.support.hostile_text import (
    WORST,
    hostile_texts,
    not_html,
    parses_as_xml,
    raw_controls,
    svgs_of,
)
from tests.support.html_page import parse

HEADER = ["patient_id", "event_time", "event_type", "value"]
FORMATS = ("json", "table", "csv")
FORMULA = ("=", "+", "-", "@")


def body_of(rows: list[tuple[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    # Every field quoted: Python 3.11's writer leaves a bare CR unquoted, which no reader takes.
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    for second, (patient, event_type) in enumerate(rows):
        writer.writerow(
            [
                patient,
                f"2025-08-26T00:{second // 60:02}:{second % 60:02}Z",
                event_type,
                70 + second % 9,
            ]
        )
    return out.getvalue().encode("utf-8")


def run_on(rows: list[tuple[str, str]], *argv: str) -> Outcome:
    # Rows declared as written: a quoted newline is no row of its own.
    with fixture_server(export_routes("x", {"d1": body_of(rows)}, {"d1": len(rows)})) as url:
        return run_cli("x", "--server", url, "--no-checkpoint", *argv)


def expected_counts(rows: list[tuple[str, str]]) -> dict[str, Any]:
    pairs = Counter(rows)
    patients: dict[str, dict[str, int]] = {}
    for (patient, event_type), n in pairs.items():
        patients.setdefault(patient, {})[event_type] = n
    return {"patients": patients, "totals": dict(Counter(t for _, t in rows))}


def counts_of(report: dict[str, Any]) -> dict[str, Any]:
    """The report's counts alone (with --stats, each value's `count`)."""

    def count(v: Any) -> int:
        return int(v["count"]) if isinstance(v, dict) else int(v)

    return {
        "patients": {
            p: {t: count(v) for t, v in ts.items()} for p, ts in report["patients"].items()
        },
        "totals": {t: count(v) for t, v in report["totals"].items()},
    }


def check_only_data(
    rows: list[tuple[str, str]], kind: str, stats: bool, tmp_path: Path, report: bool = True
) -> None:
    page = tmp_path / "r.html"
    page.unlink(missing_ok=True)
    argv = [
        "--format",
        kind,
        *(["--report", str(page)] if report else []),
        *(["--stats"] if stats else []),
    ]
    outcome = run_on(rows, *argv)
    assert outcome.status == ExitCode.OK, outcome.stderr[-2000:]
    assert not raw_controls(outcome.stderr)
    expected = expected_counts(rows)
    if kind == "json":
        assert counts_of(outcome.json()) == expected  # exact text, every id and type
    elif kind == "table":
        assert not raw_controls(outcome.stdout)
    else:
        read = list(csv.reader(io.StringIO(outcome.stdout)))
        assert all(not cell.startswith(FORMULA) for row in read[1:] for cell in row[:2])
        got = {(exact_text(r[0]), exact_text(r[1])): int(r[2]) for r in read[1:]}
        assert got == {(p, t): n for p, ts in expected["patients"].items() for t, n in ts.items()}
    if not report:
        return
    text = page.read_text(encoding="utf-8")
    assert not not_html(text)
    root = parse(text)
    for node in root.walk():
        assert node.tag != "script"
        assert not [a for a in node.attrs if a.lower().startswith("on")], node.tag
    found = svgs_of(text)
    assert found and len(found) == len(root.find_all("svg"))
    assert all(parses_as_xml(svg) for svg in found)


def rows_from(patients: list[str], types: list[str]) -> list[tuple[str, str]]:
    """Every patient with every type, the first pair twice (counts above 1 too)."""
    rows = [(p, t) for p in patients for t in types]
    return [rows[0], *rows]


@pytest.mark.parametrize(
    "kind, stats, report",
    [
        pytest.param("json", False, True, id="json-report"),
        pytest.param("table", True, True, id="table-stats-report", marks=pytest.mark.slow),
        pytest.param("csv", True, True, id="csv-stats-report", marks=pytest.mark.slow),
        pytest.param("json", True, False, id="json-stats"),
        pytest.param("table", False, False, id="table"),
        pytest.param("csv", False, False, id="csv"),
    ],
)  # fast: the chart renderer starts once (the other two report cases are in the slow tier)
def test_the_worst_texts_are_only_data(
    kind: str, stats: bool, report: bool, tmp_path: Path
) -> None:
    check_only_data(rows_from(WORST["patients"], WORST["types"]), kind, stats, tmp_path, report)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Generating overly large repr")  # 10,000-character ids
@settings(
    max_examples=25,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: each example starts the renderer
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)  # fmt: skip
@given(
    patients=st.lists(hostile_texts(), min_size=1, max_size=4, unique=True),
    types=st.lists(hostile_texts(), min_size=1, max_size=3, unique=True),
    kind=st.sampled_from(FORMATS),
    stats=st.booleans(),
)
@example(patients=WORST["patients"], types=WORST["types"], kind="csv", stats=True)
def test_any_hostile_text_is_only_data(
    patients: list[str], types: list[str], kind: str, stats: bool, tmp_path: Path
) -> None:
    check_only_data(rows_from(patients, types), kind, stats, tmp_path)


def stand_in_renderer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: str) -> None:
    """The charts are drawn by `python -m export_tally.render.report.chart_child`, which imports
    `vl_convert`: a stand-in module of that name ahead on PYTHONPATH is imported instead."""
    place = tmp_path / "stand-in"
    place.mkdir()
    (place / "vl_convert.py").write_text(code)
    path = [str(place), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(path))


FAILS = (
    "def vegalite_to_svg(spec, **options):\n    raise ValueError('no room for \\x1b[31m charts')\n"
)
ABORTS = "import os\n\ndef vegalite_to_svg(spec, **options):\n    os.abort()\n"


@pytest.mark.parametrize(
    "code, fragment",
    [
        pytest.param(FAILS, "the chart renderer failed (exit 1: ValueError: no room for \\x1b[31m charts)", id="fails"),
        pytest.param(ABORTS, "the chart renderer died (SIGABRT)", id="aborts"),
    ],
)  # fmt: skip
def test_a_renderer_that_fails_or_dies_costs_the_report_not_the_counts(
    code: str, fragment: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_in_renderer(tmp_path, monkeypatch, code)
    rows = [("P1", "hr"), ("P1", "hr"), ("P2", "bp")]
    page = tmp_path / "r.html"
    outcome = run_on(rows, "--report", str(page))
    assert outcome.status == ExitCode.REPORT
    assert outcome.json() == expected_counts(rows)  # written before the report was drawn
    message = one_line(outcome.stderr)
    assert message.startswith("cli: error: " + fragment), message
    assert message.endswith("the counts were written; the report was not")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stand-in"]  # no report, no temporary


def test_with_o_the_counts_are_in_their_file_when_the_renderer_dies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_in_renderer(tmp_path, monkeypatch, ABORTS)
    out = tmp_path / "counts.csv"
    outcome = run_on(
        [("P1", "hr")], "--format", "csv", "-o", str(out), "--report", str(tmp_path / "r.html")
    )
    assert outcome.status == ExitCode.REPORT
    assert out.read_text() == "patient_id,event_type,count\nP1,hr,1\n"
    assert not (tmp_path / "r.html").exists()


HOSTILE_EXPORT = "x\x1b]0;pwned\x07\u202e\x00"


def test_stderr_shows_server_text_escaped() -> None:
    # An unknown export id: the one line lists the ids the server has, as the server sent them.
    with fixture_server(export_routes(HOSTILE_EXPORT, {"d1": ""})) as url:
        outcome = run_cli("nope", "--server", url)
    assert outcome.status == ExitCode.USAGE
    assert not raw_controls(outcome.stderr)
    assert "x\\x1b]0;pwned\\x07\\u202e\\x00" in one_line(outcome.stderr)


def test_list_shows_export_ids_escaped() -> None:
    with fixture_server(export_routes(HOSTILE_EXPORT, {"d1": ""})) as url:
        outcome = run_cli("--list", "--server", url)
    assert outcome.status == ExitCode.OK
    assert outcome.stdout == "x\\x1b]0;pwned\\x07\\u202e\\x00\n"
