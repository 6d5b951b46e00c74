"""The HTML report, checked without a browser: it parses, one chart per chart section, every
number in its tables is the JSON's, it loads nothing, and data cannot inject markup.

The pages are built once per session (`pages`): the chart renderer is slow to start.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from export_tally.render.report.facts import DownloadFacts, RunFacts
from export_tally.render.report.page import build_page as build_report
from export_tally.render.report.views import CHART_LIMIT
from tests.support.committed import committed
from tests.support.html_page import Node, Table, external_references, number, parse, tables

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "</svg><svg onload=alert(1)>",
    "[/x]",
    "&amp; &lt;",
    "x' onmouseover='alert(1)",
    "[link=http://evil.example]z",
]


def facts(report: dict[str, Any], stats: bool, downloads: int = 2) -> RunFacts:
    rows = sum(
        v["count"] if isinstance(v, dict) else v
        for types in report["patients"].values()
        for v in types.values()
    )
    share = [rows // downloads + (1 if i < rows % downloads else 0) for i in range(downloads)]
    return RunFacts(
        export_id="demo",
        server="embedded-export-server/0.1.0",
        version="0.1.0",
        options=("--stats", "--report", "demo.html") if stats else ("--report", "r.html"),
        downloads=tuple(
            DownloadFacts(f"d{i}", n + i, n + i, i, 2 * i, i, i) for i, n in enumerate(share)
        ),
        span=(datetime(2025, 8, 26), datetime(2025, 8, 27, 12, 31, 28)),
        made=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        seconds=1.25,
        stats=stats,
        precision=1,
    )


def many_patients(count: int) -> dict[str, Any]:
    """`count` patients of four event types with statistics; patient i has i + 1 events each."""
    types = ("bp_dia", "bp_sys", "heart_rate", "spo2")
    patients = {
        f"patient-{i:03}": {
            t: {"count": i + 1, "mean": 80.5, "min": 30, "max": 200, "anomalies": i % 3,
                "latency": None if i == 0 else 12.5}
            for t in types
        }
        for i in range(count)
    }  # fmt: skip
    totals = {
        t: {"count": sum(range(1, count + 1)), "mean": 80.5, "min": 30, "max": 200,
            "anomalies": sum(i % 3 for i in range(count)), "latency": 0.5}
        for t in types
    }  # fmt: skip
    return {"patients": patients, "totals": totals}


def unmeasured() -> dict[str, Any]:
    """One known event type and one with no normal range, whose anomalies are null."""
    stats = {"count": 2, "mean": 36.6, "min": 36, "max": 37, "latency": 60.0}
    return {
        "patients": {
            "P1": {"temp": {**stats, "anomalies": None}, "heart_rate": {**stats, "anomalies": 2}}
        },
        "totals": {"temp": {**stats, "anomalies": None}, "heart_rate": {**stats, "anomalies": 2}},
    }


def hostile() -> dict[str, Any]:
    patients = {pid: {"<b>type</b>": i + 1, "[red]t": 1} for i, pid in enumerate(HOSTILE)}
    return {
        "patients": patients,
        "totals": {"<b>type</b>": sum(range(1, len(HOSTILE) + 1)), "[red]t": len(HOSTILE)},
    }


@pytest.fixture(scope="session")
def pages() -> dict[str, tuple[str, dict[str, Any], RunFacts]]:
    """name -> (page, report, facts), built once per session."""
    cases = {
        "demo-stats": (committed("examples/demo.stats.json"), True),
        "small-counts": (committed("small.json"), False),
        "many-stats": (many_patients(CHART_LIMIT + 10), True),
        "hostile": (hostile(), False),
        "unmeasured": (unmeasured(), True),
        "empty": ({"patients": {}, "totals": {}}, True),
    }
    built = {}
    for name, (report, stats) in cases.items():
        run = facts(report, stats, downloads=0 if name == "empty" else 2)
        built[name] = (build_report(run, report), report, run)
    return built


def page_tree(pages: dict[str, Any], name: str) -> Node:
    return parse(pages[name][0])


def table_by_caption(root: Node, caption: str) -> Table:
    found = [t for t in tables(root) if t.caption == caption]
    assert len(found) == 1, [t.caption for t in tables(root)]
    return found[0]


def numbers(table: Table) -> dict[str, list[int | float | None]]:
    rows = {row[0]: [number(c) for c in row[1:]] for row in table.rows}
    if table.foot is not None:
        rows[table.foot[0]] = [number(c) for c in table.foot[1:] if c]
    return rows


@pytest.mark.parametrize("name", ["demo-stats", "small-counts", "many-stats", "hostile", "empty"])
def test_page_parses_and_loads_nothing(pages: dict[str, Any], name: str) -> None:
    root = page_tree(pages, name)
    assert external_references(root) == []
    assert root.find_all("html") and root.find_all("title")
    ids = [n.attrs["id"] for n in root.walk() if n.attrs.get("id")]
    assert [i for i, n in Counter(ids).items() if n > 1] == []  # charts' ids never collide


def test_no_url_at_all_in_a_report_of_the_bundled_server(pages: dict[str, Any]) -> None:
    page = pages["demo-stats"][0]
    assert "://" not in page
    assert "<script" not in page.lower()


@pytest.mark.parametrize(
    ("name", "charts"),
    [("demo-stats", 3 + 3 * 2), ("small-counts", 3), ("unmeasured", 3 + 3 + 2)],
)
def test_one_chart_per_chart_section(pages: dict[str, Any], name: str, charts: int) -> None:
    root = page_tree(pages, name)
    sections = root.find_all("section", "chart")
    assert len(sections) == charts
    for section in sections:
        assert len(section.find_all("svg")) == 1
        svg = section.find_all("svg")[0]
        assert svg.attrs["role"] == "img" and svg.attrs["aria-label"]  # one named image
        assert len(section.find_all("table")) == 1  # the chart's numbers, under it
    assert len(root.find_all("svg")) == charts


def test_a_type_without_a_normal_range_has_no_anomaly_rate(pages: dict[str, Any]) -> None:
    root = page_tree(pages, "unmeasured")
    section = [
        s for s in root.find_all("section") if (s.attrs.get("id") or "").endswith("-anomalies")
    ]
    notes = [s for s in section if not s.find_all("svg")]
    assert len(section) == 2 and len(notes) == 1
    assert "anomalies are not measured" in pages["unmeasured"][0]


def test_count_tables_equal_the_json(pages: dict[str, Any]) -> None:
    page, report, _ = pages["small-counts"]
    root = parse(page)
    types = sorted(report["totals"])
    counts = numbers(
        table_by_caption(root, "Events per patient and event type (most events first)")
    )
    for patient_id, values in report["patients"].items():
        expected = [values.get(t, 0) for t in types]
        assert counts.pop(patient_id) == [*expected, sum(expected)]
    assert counts == {
        "totals": [*(report["totals"][t] for t in types), sum(report["totals"].values())]
    }
    totals = numbers(table_by_caption(root, "Events per event type"))
    assert totals == {
        **{t: [n] for t, n in report["totals"].items()},
        "all types": [sum(report["totals"].values())],
    }


def assert_page_tables_equal_the_stats_json(root: Node, report: dict[str, Any]) -> None:
    for event_type, total in report["totals"].items():
        per_patient = {p: v[event_type] for p, v in report["patients"].items() if event_type in v}

        values = numbers(table_by_caption(root, f"{event_type}: values per patient"))
        fields = ("count", "mean", "min", "max")
        assert values == {
            **{p: [s[f] for f in fields] for p, s in per_patient.items()},
            "totals": [total[f] for f in fields],
        }

        rates = table_by_caption(root, f"{event_type}: anomalies / count (highest first)")
        shown = numbers(rates)
        for p, s in [*per_patient.items(), ("totals", total)]:
            anomalies, count, rate = shown[p]
            assert [anomalies, count] == [s["anomalies"], s["count"]]
            assert rate == round(100 * s["anomalies"] / s["count"], 2)
        listed = [float(shown[row[0]][2] or 0) for row in rates.rows]
        assert listed == sorted(listed, reverse=True)  # highest rate first

        gaps = numbers(table_by_caption(root, f"{event_type}: average gap between readings"))
        assert gaps == {
            **{p: [s["count"], s["latency"]] for p, s in per_patient.items()},
            "totals": [total["count"], total["latency"]],
        }


def test_stats_tables_equal_the_json(pages: dict[str, Any]) -> None:
    page, report, _ = pages["demo-stats"]
    assert_page_tables_equal_the_stats_json(parse(page), report)


@pytest.mark.parametrize("name", ["demo", "small"])
def test_committed_reports_hold_the_committed_numbers(name: str) -> None:
    """examples/demo.html and examples/small.html are the tool's output, made with the command
    docs/output-formats.md gives: `cli NAME --stats --report examples/NAME.html`."""
    root = parse((ROOT / "examples" / f"{name}.html").read_text(encoding="utf-8"))
    report = committed(f"examples/{name}.stats.json")
    summary = root.find_all("dl", "summary")[0]
    terms = [n.text() for n in summary.find_all("dt")]
    values = dict(zip(terms, (n.text() for n in summary.find_all("dd")), strict=True))
    assert values["Options"] == f"--report examples/{name}.html --stats"
    assert external_references(root) == []
    assert_page_tables_equal_the_stats_json(root, report)
    types = len(report["totals"])
    assert len(root.find_all("section", "chart")) == 3 + 3 * types


def test_normal_ranges_are_listed(pages: dict[str, Any]) -> None:
    root = page_tree(pages, "demo-stats")
    assert numbers(table_by_caption(root, "Normal ranges used")) == {
        "bp_dia": [60, 120],
        "bp_sys": [90, 200],
    }


def test_quality_table_equals_the_run(pages: dict[str, Any]) -> None:
    page, _, run = pages["demo-stats"]
    listing = table_by_caption(parse(page), "Rows and recoveries per download")
    assert listing.headers[:7] == [
        "download", "rows declared", "rows counted", "skipped as bad", "retries", "resumes",
        "restarts",
    ]  # fmt: skip
    for row, d in zip(listing.rows, run.downloads, strict=True):
        assert row[0] == d.id
        assert [number(c) for c in row[1:8]] == [
            d.rows_declared, d.rows_counted, d.skipped, d.retries, d.resumes, d.restarts, d.parts,
        ]  # fmt: skip


def test_summary_says_what_where_when_and_how_long(pages: dict[str, Any]) -> None:
    root = page_tree(pages, "demo-stats")
    summary = root.find_all("dl", "summary")[0]
    terms = [n.text() for n in summary.find_all("dt")]
    values = dict(zip(terms, (n.text() for n in summary.find_all("dd")), strict=True))
    assert values["Export"] == "demo"
    assert values["Server"] == "embedded-export-server/0.1.0"
    assert values["Tool"] == "export-tally 0.1.0"
    assert values["Options"] == "--stats --report demo.html"
    assert values["Downloads"] == "2"
    assert values["Rows"].startswith("18,785 ")  # the made-up facts add one row to download d1
    assert values["Time span of the events"].startswith(
        "2025-08-26 00:00:00 to 2025-08-27 12:31:28"
    )
    assert values["Made"] == "2026-01-02 03:04:05 UTC"
    assert values["Run took"] == "1.2 s"


def test_charts_show_the_50_patients_with_most_events_and_say_how_many_are_left_out(
    pages: dict[str, Any],
) -> None:
    page, report, _ = pages["many-stats"]
    root = parse(page)
    counts = root.find_all("section", "chart")[1]
    assert "10 more" in counts.text()
    labels = {n.text() for n in counts.find_all("svg")[0].find_all("text")}
    shown = {p for p in report["patients"] if p in labels}
    expected = {f"patient-{i:03}" for i in range(10, CHART_LIMIT + 10)}  # the most events
    assert shown == expected
    assert len(counts.find_all("tbody")[0].find_all("tr")) == CHART_LIMIT + 10  # table: all


def test_a_large_report_stays_small(pages: dict[str, Any]) -> None:
    assert len(pages["demo-stats"][0].encode()) < 250_000
    assert len(pages["many-stats"][0].encode()) < 500_000  # 50 patients in 15 charts


def test_hostile_data_is_shown_as_text_never_as_markup(pages: dict[str, Any]) -> None:
    page, report, _ = pages["hostile"]
    root = parse(page)
    for node in root.walk():
        assert node.tag not in ("script", "img", "iframe", "object", "embed")
        assert not [a for a in node.attrs if a.startswith("on")], node
    assert root.find_all("svg") and len(root.find_all("svg")) == len(
        root.find_all("section", "chart")
    )
    counts = table_by_caption(root, "Events per patient and event type (most events first)")
    assert {row[0] for row in counts.rows} == set(report["patients"])
    assert counts.headers == ["patient", "<b>type</b>", "[red]t", "all types"]
    svg_text = {n.text() for n in root.find_all("section", "chart")[1].find_all("text")}
    assert set(HOSTILE) <= svg_text  # the chart shows them as text, too


def test_no_events_says_so(pages: dict[str, Any]) -> None:
    root = page_tree(pages, "empty")
    assert "No events" in root.text()
    assert root.find_all("section", "chart") == []
    assert "The export has no downloads." in root.text()


def test_each_chart_gets_ids_of_its_own() -> None:
    from export_tally.render.report import charts

    fixed = (
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
        '<defs><clipPath id="clip1"/><linearGradient id="clip10"/></defs>'
        '<g clip-path="url(#clip1)"><rect fill="url(#clip10)"/></g></svg>'
    )
    first, second = charts.finish_svg(fixed), charts.finish_svg(fixed)
    ids = []
    for svg in (first, second):
        root = parse(svg)
        own = {n.attrs["id"] for n in root.walk() if "id" in n.attrs}
        referenced = {n.attrs.get("clip-path") for n in root.walk()} | {
            n.attrs.get("fill") for n in root.walk()
        }
        assert {f"url(#{i})" for i in own} == referenced - {None}
        assert "xmlns" not in svg
        ids.append(own)
    assert not ids[0] & ids[1]
