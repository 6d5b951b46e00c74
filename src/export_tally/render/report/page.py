"""The report page: one self-contained HTML file, charts inlined as SVG, no scripts, no URLs.

Sections: a summary of the run, data quality per download, counts per patient and event type,
totals, and with `--stats` three charts per event type (values against the normal range, the
anomaly rate, the average gap between readings). Under every chart, its numbers as a table that
lists every patient. Every text that comes from the data or the user goes through `_e`
(`html.escape`, and characters HTML cannot carry shown as escapes: see `html_text`); the charts
get only labels made for them (`chart_text`), rendered in a child process (`chart_process`) whose
failure or death is a ReportError, never the tool's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from datetime import datetime, timedelta
from importlib.resources import files
from typing import Any

from export_tally.core.stats.aggregate import NORMAL_RANGES
from export_tally.render.number_format import count_of, event_types_of, format_number
from export_tally.render.report import charts, views
from export_tally.render.report.chart_process import ChartProcess
from export_tally.render.report.facts import RunFacts
from export_tally.render.report.html_text import escaped

Cell = str | int | float | None
NO_EVENTS = "No events: the export has no rows."
# The charts of the page being built: `_figure` leaves a placeholder (a comment, which no escaped
# text can contain) and its chart here; `build_page` renders them all at once and fills them in.
_charts: ContextVar[list[Any]] = ContextVar("charts")


def _e(text: object) -> str:
    return escaped(str(text))


def _cell(value: Cell, places: int | None = None) -> str:
    return _e(value) if isinstance(value, str) else format_number(value, places)


def table(
    caption: str,
    headers: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    foot: Sequence[Cell] | None = None,
    places: dict[int, int] | None = None,
) -> str:
    """An HTML table whose first column names the row; numbers get thousands separators.

    `places` maps a column index to the decimals its floats are shown with.
    """
    places = places or {}

    def row(cells: Sequence[Cell]) -> str:
        first, *rest = cells
        tds = "".join(f"<td>{_cell(v, places.get(i))}</td>" for i, v in enumerate(rest, 1))
        return f'<tr><th scope="row">{_cell(first)}</th>{tds}</tr>'

    head = "".join(f'<th scope="col">{_e(h)}</th>' for h in headers)
    body = "\n".join(row(r) for r in rows)
    tfoot = f"<tfoot>{row(foot)}</tfoot>" if foot is not None else ""
    return (
        f'<div class="table-wrap"><table><caption>{_e(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>{tfoot}</table></div>"
    )


def _figure(chart: Any, caption: str, label: str) -> str:
    """The chart's SVG and its caption; to a screen reader, one image named `label` (its numbers
    are in the table under it, so the marks need no labels of their own)."""
    pending = _charts.get()
    pending.append((chart, label))
    return f"<figure><!--chart-{len(pending) - 1}--><figcaption>{caption}</figcaption></figure>"


def _draw_charts(page: str, pending: list[Any], renderer: ChartProcess) -> str:
    """The page with each chart placeholder replaced by the chart's SVG (one child, all charts)."""
    jobs = []
    for chart, _ in pending:
        spec = chart.to_dict()
        jobs.append((spec, charts.vega_lite_version(spec)))
    svgs = renderer.render(jobs)
    for number, ((_, label), svg) in enumerate(zip(pending, svgs, strict=True)):
        named = charts.finish_svg(svg).replace(
            "<svg ", f'<svg role="img" aria-label="{_e(label)}" ', 1
        )
        page = page.replace(f"<!--chart-{number}-->", named, 1)
    return page


def _cut_note(cut: views.Cut, what: str = "patients") -> str:
    if cut.left_out:
        return (
            f"The {len(cut.shown)} {what} with the most events; {cut.left_out:,} more "
            "left out of the chart are in the table."
        )
    return f"All {len(cut.shown)} {what}."


def _section(anchor: str, title: str, body: str, chart: bool = True, level: int = 2) -> str:
    kind = ' class="chart"' if chart else ""
    return f'<section id="{anchor}"{kind}><h{level}>{_e(title)}</h{level}>\n{body}\n</section>'


def _when(moment: datetime) -> str:
    """A moment to the second; UTC ones say so, naive ones (as the metadata gives them) as they are."""
    if moment.utcoffset() == timedelta(0):
        return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return moment.isoformat(sep=" ", timespec="seconds")


def summary(facts: RunFacts, report: dict[str, Any]) -> str:
    events = sum(count_of(v) for v in report["totals"].values())
    skipped = sum(d.skipped for d in facts.downloads)
    span = "not given by the server's metadata"
    if facts.span is not None:
        span = f"{_when(facts.span[0])} to {_when(facts.span[1])} (from the downloads' metadata)"
    items = [
        ("Export", f'<span class="id">{_e(facts.export_id)}</span>'),
        ("Server", _e(facts.server)),
        ("Tool", f"export-tally {_e(facts.version)}"),
        ("Options", _e(" ".join(facts.options)) if facts.options else "the defaults"),
        ("Downloads", format_number(len(facts.downloads))),
        ("Rows", f"{format_number(facts.rows)} ({format_number(skipped)} skipped as bad)"),
        ("Events counted", format_number(events)),
        ("Patients", format_number(len(report["patients"]))),
        # Each in <bdi>: a bidi control in one type must not reorder the types after it.
        ("Event types", ", ".join(f"<bdi>{_e(t)}</bdi>" for t in event_types_of(report)) or "none"),
        ("Time span of the events", _e(span)),
        ("Made", _e(_when(facts.made))),
        ("Run took", f"{facts.seconds:,.1f} s"),
    ]
    if facts.notes:  # server text: escaped, each line in its own <bdi>
        notes = "".join(f"<li><bdi>{_e(note.strip())}</bdi></li>" for note in facts.notes)
        items.append(("Server notes", f"<ul>{notes}</ul>"))
    body = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in items)
    return _section("summary", "Summary", f'<dl class="summary">{body}</dl>', chart=False)


def quality(facts: RunFacts) -> str:
    downloads = facts.downloads
    text = (
        "<p>Per download: the rows its metadata declares and the rows counted (they must be "
        "equal, or the run fails), the rows skipped as bad (<code>--on-bad-row skip</code>), "
        "and the failed attempts recovered from by resuming or restarting the download.</p>"
    )
    if not downloads:
        return _section("quality", "Data quality", text + '<p class="empty">The export has no downloads.</p>', chart=False)  # fmt: skip
    rows: list[list[Cell]] = []
    sums = [0] * 7
    for d in downloads:
        numbers = [
            d.rows_declared,
            d.rows_counted,
            d.skipped,
            d.retries,
            d.resumes,
            d.restarts,
            d.parts,
        ]
        sums = [a + b for a, b in zip(sums, numbers, strict=True)]
        rows.append([d.id, *numbers, "yes" if d.restored else "no"])
    foot: list[Cell] = ["all downloads", *sums, ""]
    listing = table(
        "Rows and recoveries per download",
        ("download", "rows declared", "rows counted", "skipped as bad", "retries", "resumes",
         "restarts", "parts", "from checkpoint"),
        rows,
        foot,
    )  # fmt: skip
    chart = _figure(
        charts.quality_chart(downloads),
        "Bars: rows counted, with those skipped as bad in red; black tick: rows declared.",
        "rows per download",
    )
    return _section("quality", "Data quality", text + chart + listing)


def counts(report: dict[str, Any]) -> str:
    types = event_types_of(report)
    ranked = views.ranked_patients(report)
    cut = views.cut(ranked)
    chart = _figure(
        charts.count_heatmap(views.count_rows(report, cut.shown), cut.shown, types),
        _e(_cut_note(cut)) + " Darker cells: more events.",
        "events per patient and event type",
    )
    rows: list[list[Cell]] = []
    for patient_id in ranked:
        values = report["patients"][patient_id]
        per_type = [count_of(values.get(t, 0)) for t in types]
        rows.append([patient_id, *per_type, sum(per_type)])
    totals = [count_of(report["totals"][t]) for t in types]
    numbers = table(
        "Events per patient and event type (most events first)",
        ("patient", *types, "all types"),
        rows,
        ("totals", *totals, sum(totals)),
    )
    return _section("counts", "Events per patient and event type", chart + numbers)


def totals(report: dict[str, Any]) -> str:
    rows = views.total_rows(report)
    chart = _figure(
        charts.totals_chart(rows), "Events per event type, over all patients.", "events per type"
    )
    numbers = table(
        "Events per event type",
        ("event type", "events"),
        [(r["event_type"], r["count"]) for r in rows],
        ("all types", sum(r["count"] for r in rows)),
    )
    return _section("totals", "Totals per event type", chart + numbers)


def normal_ranges(report: dict[str, Any]) -> str:
    rows: list[tuple[Cell, ...]] = []
    for t in event_types_of(report):
        bounds = NORMAL_RANGES.get(t)
        rows.append((t, *bounds) if bounds else (t, "none", "none"))
    text = (
        "<p>A value outside its event type's normal range (inclusive) is an anomaly; "
        "for a type without a range anomalies are not measured (null in the JSON).</p>"
    )
    numbers = table("Normal ranges used", ("event type", "low", "high"), rows)
    return _section("normal-ranges", "Normal ranges", text + numbers, chart=False)


def anomaly_rates(
    everyone: list[dict[str, Any]],
    shown: list[dict[str, Any]],
    total: dict[str, Any],
    event_type: str,
    note: str,
) -> str:
    """The anomaly-rate chart and its table; for a type with no normal range, a note instead."""
    if total["anomalies"] is None:
        return (
            f"<p>No normal range is known for {_e(event_type)}, so its anomalies are not "
            "measured (null in the JSON).</p>"
        )
    by_rate = views.by_anomaly_rate(everyone)
    rate = _figure(
        charts.anomaly_chart(views.by_anomaly_rate(shown)),
        f"{note} Highest rate first.",
        f"{event_type}: anomaly rate per patient",
    )
    rate += table(
        f"{event_type}: anomalies / count (highest first)",
        ("patient", "anomalies", "count", "rate (%)"),
        [(r["patient"], r["anomalies"], r["count"], 100 * r["rate"]) for r in by_rate],
        ("totals", total["anomalies"], total["count"], 100 * (views.anomaly_rate(total) or 0)),
        places={3: 2},
    )
    return rate


def event_type_stats(report: dict[str, Any], event_type: str, precision: int, anchor: str) -> str:
    """Three charts for one event type, each with its table of every patient."""
    ranked = views.ranked_patients(report, event_type)
    cut = views.cut(ranked)
    everyone = views.stats_rows(report, event_type, ranked)
    shown = everyone[: len(cut.shown)]  # the cut is the start of the ranking
    total = report["totals"][event_type]
    note = _e(_cut_note(cut))
    bounds = NORMAL_RANGES.get(event_type)
    band = (
        f"green band: the normal range {bounds[0]}-{bounds[1]}"
        if bounds
        else "no normal range for this type"
    )
    p = precision

    values = _figure(
        charts.range_chart(shown, bounds),
        f"{note} Dot: mean; line: min to max; {band}.",
        f"{event_type}: mean, min and max per patient",
    )
    values += table(
        f"{event_type}: values per patient",
        ("patient", "count", "mean", "min", "max"),
        [(r["patient"], r["count"], r["mean"], r["min"], r["max"]) for r in everyone],
        ("totals", total["count"], total["mean"], total["min"], total["max"]),
        places={2: p},
    )
    rate = anomaly_rates(everyone, shown, total, event_type, note)
    measured = total["anomalies"] is not None
    missing = sum(1 for r in shown if r["latency"] is None)
    lonely = f" {missing} patient(s) with a single reading have no gap." if missing else ""
    gap = _figure(
        charts.gap_chart(shown, p),
        f"{note}{lonely}",
        f"{event_type}: average gap between readings per patient",
    )
    gap += table(
        f"{event_type}: average gap between readings",
        ("patient", "count", "gap (s)"),
        [(r["patient"], r["count"], r["latency"]) for r in everyone],
        ("totals", total["count"], total["latency"]),
        places={2: p},
    )
    body = (
        f"<p>{format_number(total['count'])} events of this type; {band}.</p>"
        '<div class="trio">'
        + _section(f"{anchor}-values", "Values against the normal range", values, level=3)
        + _section(f"{anchor}-anomalies", "Anomaly rate", rate, chart=measured, level=3)
        + _section(f"{anchor}-gap", "Average gap between readings", gap, level=3)
        + "</div>"
    )
    return (
        f'<section id="{anchor}" class="event-type"><h2>{_e(event_type)}</h2>\n{body}\n</section>'
    )


def build_page(facts: RunFacts, report: dict[str, Any]) -> str:
    """The whole report as one HTML document; ReportError when its charts cannot be drawn."""
    renderer = ChartProcess()  # it imports the renderer while the page is built
    pending: list[Any] = []
    token = _charts.set(pending)
    try:
        page = _build(facts, report)
        return _draw_charts(page, pending, renderer) if pending else page
    finally:
        _charts.reset(token)
        renderer.close()


def _build(facts: RunFacts, report: dict[str, Any]) -> str:
    types = event_types_of(report)
    parts = [summary(facts, report), quality(facts)]
    if types:
        parts += [counts(report), totals(report)]
        if facts.stats:
            parts.append(normal_ranges(report))
            parts += [
                event_type_stats(report, t, facts.precision, f"type-{i}")
                for i, t in enumerate(types, 1)
            ]
    else:
        parts.append(_section("counts", "Events", f'<p class="empty">{NO_EVENTS}</p>', chart=False))
    css = files("export_tally.render.report").joinpath("style.css").read_text(encoding="utf-8")
    title = f"export-tally report: {facts.export_id}"
    what = "statistics" if facts.stats else "counts"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<style>
{css}</style>
</head>
<body>
<header>
<h1>Export <span class="id">{_e(facts.export_id)}</span></h1>
<p class="lede">Events per patient and event type ({what}), counted exactly by export-tally.</p>
</header>
<main>
{chr(10).join(parts)}
</main>
<footer>Made by export-tally {_e(facts.version)} on {_e(_when(facts.made))}. Charts: Vega-Lite,
rendered to SVG when the report was made; this page has no scripts and loads nothing.</footer>
</body>
</html>
"""
