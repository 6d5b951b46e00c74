"""--format json|table|csv from a report dict: the numbers are the JSON's, nothing is cut or read
as markup, and the table fits its width by splitting into several tables."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from export_tally.render.formats import COUNT_COLUMNS, STATS_COLUMNS, render_csv, render_result
from export_tally.render.json_text import render_json
from export_tally.render.number_format import Terminal
from export_tally.render.table import NO_EVENTS
from tests.support.committed import committed
from tests.support.text_table import numbers_by_row, table_rows

ROOT = Path(__file__).resolve().parents[2]
EMPTY: dict[str, Any] = {"patients": {}, "totals": {}}
ANSI = re.compile(r"\x1b\[")


def tables_by_title(text: str, titles: list[str]) -> dict[str, dict[str, list[int | float | None]]]:
    """Each title's rows, the parts of a table split to fit ("title (2 of 3)") joined again."""
    blocks: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        title = re.sub(r" \(\d+ of \d+\)$", "", line)
        if title in titles:
            current = blocks.setdefault(title, [])
            current.append("")  # a new part
        elif current:
            current[-1] += line + "\n"
    joined = {}
    for title, parts in blocks.items():
        rows: dict[str, list[int | float | None]] = {}
        for part in parts:
            for row_id, values in numbers_by_row(part).items():
                rows.setdefault(row_id, []).extend(values)
        joined[title] = rows
    return joined


def test_json_is_the_contract_byte_for_byte() -> None:
    report = committed("demo.json")
    assert render_result(report, "json") == render_json(report) == (ROOT / "demo.json").read_text()


@pytest.mark.parametrize("name", ["demo.json", "small.json", "large.json"])
def test_table_numbers_equal_the_json(name: str) -> None:
    report = committed(name)
    rows = numbers_by_row(render_result(report, "table"))
    types = sorted(report["totals"])
    for patient_id, values in report["patients"].items():
        expected = [values.get(t, 0) for t in types]
        assert rows[patient_id] == [*expected, sum(expected)]
    totals = [report["totals"][t] for t in types]
    assert rows["totals"] == [*totals, sum(totals)]
    assert len(rows) == len(report["patients"]) + 1


def assert_text_tables_equal_the_stats_json(report: dict[str, Any], text: str) -> None:
    fields = ("count", "mean", "min", "max", "anomalies", "latency")
    types = sorted(report["totals"])
    tables = tables_by_title(text, types)
    assert sorted(tables) == types
    for event_type, rows in tables.items():
        expected = {
            p: [values[event_type][f] for f in fields]
            for p, values in report["patients"].items()
            if event_type in values
        }
        expected["totals"] = [report["totals"][event_type][f] for f in fields]
        assert rows == expected


@pytest.mark.parametrize(
    "name", ["examples/demo.stats.json", "examples/small.stats.json", "examples/large.stats.json"]
)
def test_stats_table_numbers_equal_the_json(name: str) -> None:
    report = committed(name)
    assert_text_tables_equal_the_stats_json(report, render_result(report, "table", stats=True))


def test_large_fits_80_columns_in_one_table() -> None:
    text = render_result(committed("large.json"), "table", terminal=Terminal(80))
    assert max(map(len, text.splitlines())) <= 80
    assert "(1 of" not in text


def test_thousands_separators_and_right_alignment() -> None:
    report = {"patients": {"P1": {"a": 1234567}, "P2": {"a": 5}}, "totals": {"a": 1234572}}
    lines = render_result(report, "table").splitlines()
    p1 = next(line for line in lines if line.startswith("│ P1 "))
    p2 = next(line for line in lines if line.startswith("│ P2 "))
    assert "1,234,567" in p1
    assert p1.index("1,234,567") + len("1,234,567") == p2.index("5") + 1  # right-aligned


def wide_report(types: int, digits: int = 12) -> dict[str, Any]:
    names = [f"event_type_{i:02}" for i in range(types)]
    big = int("9" * digits)
    patients = {f"patient-{i}": {n: big - i for n in names} for i in range(3)}
    return {
        "patients": patients,
        "totals": {n: sum(p[n] for p in patients.values()) for n in names},
    }


def test_columns_that_do_not_fit_are_split_into_tables_never_cut() -> None:
    report = wide_report(12)
    text = render_result(report, "table", terminal=Terminal(80))
    assert max(map(len, text.splitlines())) <= 80
    assert re.search(r"\(1 of [2-9]\)", text)
    cells = set(re.split(r"\s+", text))
    for values in report["patients"].values():
        for n in values.values():
            assert f"{n:,}" in cells  # every number whole
    for name in report["totals"]:
        assert name in cells  # every header whole
    parts = len(re.findall(r"\(\d+ of \d+\)", text))
    for patient_id in report["patients"]:
        assert text.count(patient_id) == parts  # each part repeats the patient column
    joined = tables_by_title(text, ["events per patient and event type"])
    rows = joined["events per patient and event type"]
    for patient_id, values in report["patients"].items():
        assert rows[patient_id] == [*values.values(), sum(values.values())]


def test_a_column_wider_than_the_terminal_is_printed_whole() -> None:
    huge = 10**60
    report = {"patients": {"P" * 50: {"a": huge}}, "totals": {"a": huge}}
    text = render_result(report, "table", terminal=Terminal(40))
    assert f"{huge:,}" in text
    assert "P" * 50 in text


@pytest.mark.parametrize("width", [30, 50, 80, 120])
def test_stats_tables_split_to_fit(width: int) -> None:
    report = committed("examples/small.stats.json")
    text = render_result(report, "table", stats=True, terminal=Terminal(width))
    assert max(map(len, text.splitlines())) <= max(width, len("patient_id   3,541,898") + 2)
    assert_text_tables_equal_the_stats_json(report, text)
    if width < 80:
        assert "(1 of" in text


@pytest.mark.parametrize(
    "patient_id",
    ["[/x]", "[bold red]y[/]", "[link=http://evil]z", ":smile:", "<b>x</b>"],
    ids=["closing-tag", "style", "link", "emoji", "html"],
)
def test_data_is_never_markup(patient_id: str) -> None:
    report = {"patients": {patient_id: {"[b]t": 1}}, "totals": {"[b]t": 1}}
    rows = table_rows(render_result(report, "table"))
    assert rows[0] == ["patient_id", "[b]t", "total"]
    assert rows[1] == [patient_id, "1", "1"]


@pytest.mark.parametrize(
    "patient_id, printed",
    [
        ("\x1b[31mred", "\\x1b[31mred"),
        ("a\nb", "a\\nb"),
        ("a\tb", "a\\tb"),
        ("bell\a", "bell\\x07"),
    ],
    ids=["escape-sequence", "newline", "tab", "bell"],
)
def test_control_characters_are_shown_escaped(patient_id: str, printed: str) -> None:
    report = {"patients": {patient_id: {"t": 1}}, "totals": {"t": 1}}
    text = render_result(report, "table")
    assert not re.search(r"[\x00-\x1f\x7f]", text.replace("\n", ""))
    assert table_rows(text)[1] == [printed, "1", "1"]


def test_no_colour_unless_styled() -> None:
    report = committed("demo.json")
    assert not ANSI.search(render_result(report, "table", terminal=Terminal(80, styled=False)))
    assert ANSI.search(render_result(report, "table", terminal=Terminal(80, styled=True)))


def test_empty_table_has_a_one_line_note() -> None:
    for stats in (False, True):
        text = render_result(EMPTY, "table", stats=stats)
        assert text.rstrip("\n").splitlines()[-1] == NO_EVENTS
        assert "patient_id" in text


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_header_and_rows_equal_the_json() -> None:
    report = committed("small.json")
    text = render_csv(report)
    assert text.splitlines()[0] == "patient_id,event_type,count"
    rows = read_csv(text)
    assert {(r["patient_id"], r["event_type"]): int(r["count"]) for r in rows} == {
        (p, t): n for p, types in report["patients"].items() for t, n in types.items()
    }
    assert len(rows) == sum(len(t) for t in report["patients"].values())  # no totals rows


def test_stats_csv_equals_the_json_and_a_null_is_an_empty_cell() -> None:
    report = committed("examples/demo.stats.json")
    report["patients"]["P001"]["bp_dia"]["latency"] = None
    text = render_result(report, "csv", stats=True)
    assert text.splitlines()[0] == ",".join(STATS_COLUMNS)
    for row in read_csv(text):
        expected = report["patients"][row["patient_id"]][row["event_type"]]
        for column in STATS_COLUMNS[2:]:
            value = expected[column]
            assert row[column] == ("" if value is None else json.dumps(value))


def test_csv_quotes_what_needs_quoting() -> None:
    awkward = 'a,"b"\nc'
    report = {"patients": {awkward: {"t,1": 2}}, "totals": {"t,1": 2}}
    rows = read_csv(render_csv(report))
    assert rows == [{"patient_id": awkward, "event_type": "t,1", "count": "2"}]


def test_empty_csv_is_the_header_alone() -> None:
    assert render_csv(EMPTY) == ",".join(COUNT_COLUMNS) + "\n"
    assert render_csv(EMPTY, stats=True) == ",".join(STATS_COLUMNS) + "\n"


def test_table_and_report_libraries_load_only_when_asked_for() -> None:
    """Also guards the start-up time: httpx imports rich (and pygments) whenever rich is
    installed, which would make every run and worker process start a tenth of a second slower."""
    code = (
        "import sys, json\n"
        "from export_tally import cli\n"
        "from export_tally.render.formats import render_result\n"
        "r = {'patients': {'P': {'a': 1}}, 'totals': {'a': 1}}\n"
        "render_result(r, 'json'); render_result(r, 'csv')\n"
        "heavy = ('prettytable', 'rich', 'altair', 'vl_convert')\n"
        "print(json.dumps(sorted(m for m in heavy if m in sys.modules)))\n"
        "render_result(r, 'table')\n"
        "print(json.dumps('prettytable' in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after = out.stdout.splitlines()
    assert json.loads(before) == []
    assert json.loads(after) is True
