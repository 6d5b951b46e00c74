"""The report's charts: Vega-Lite specifications built with altair, rendered to static SVG.

altair builds the specifications from plain lists of dicts (no pandas, no NumPy); vl-convert
renders them offline (in a child process: `chart_process`) with the Vega-Lite version the
specifications are written for (read from their `$schema`, so the two cannot drift apart), and may
fetch nothing (`allowed_base_urls=[]`). Each SVG's ids get a prefix of their own, so that many
charts can share one page. Text from the data reaches a chart only as its `chart_label`.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from typing import Any

import altair as alt

from export_tally.render.report.chart_text import chart_label
from export_tally.render.report.facts import DownloadFacts

ROW_HEIGHT = 20  # pixels per patient (or download) on a chart's band axis
WIDTH = 460
NARROW = 260  # the statistics' charts, three side by side on a wide screen
COLOURS = {"counted": "#4c78a8", "skipped": "#e45756", "band": "#54a24b", "mean": "#1f2937"}
_SCHEMA = re.compile(r"/vega-lite/v(\d+)\.(\d+)")
_IDS = re.compile(r'\bid="([^"]+)"')
_NAMESPACES = re.compile(r' xmlns(:xlink)?="[^"]*"')
_counter = itertools.count(1)


def vega_lite_version(spec: dict[str, Any]) -> str:
    """The `major.minor` Vega-Lite version a specification's `$schema` names, e.g. "6.4"."""
    found = _SCHEMA.search(str(spec.get("$schema", "")))
    if found is None:
        raise ValueError(
            f"a Vega-Lite specification without a versioned $schema: {spec.get('$schema')!r}"
        )
    return f"{found[1]}.{found[2]}"


def finish_svg(svg: str) -> str:
    """A rendered chart as an SVG element ready to inline in HTML: ids prefixed, no namespace URLs."""
    prefix = f"c{next(_counter)}-"
    for name in set(_IDS.findall(svg)):
        svg = svg.replace(f'id="{name}"', f'id="{prefix}{name}"')
        svg = svg.replace(f"url(#{name})", f"url(#{prefix}{name})")
        svg = svg.replace(f'href="#{name}"', f'href="#{prefix}{name}"')
    if "xlink:" not in svg.replace("xmlns:xlink", ""):
        svg = _NAMESPACES.sub("", svg, count=2)  # HTML puts <svg> in its namespace anyway
    return svg


def _labelled(rows: Sequence[dict[str, Any]], *keys: str) -> list[dict[str, Any]]:
    """The rows with the text under `keys` replaced by its chart label."""
    return [{**row, **{k: chart_label(row[k]) for k in keys}} for row in rows]


def _labels(names: Sequence[str]) -> list[str]:
    return [chart_label(n) for n in names]


def _height(rows: int) -> int:
    return max(1, rows) * ROW_HEIGHT


def _axis_y(order: Sequence[str], field: str = "patient") -> alt.Y:
    """A band axis of names in this order, never cut short; untitled (the section says what)."""
    return alt.Y(f"{field}:N", title=None, sort=list(order), axis=alt.Axis(labelLimit=0))


def _base(values: list[dict[str, Any]]) -> alt.Chart:
    return alt.Chart(alt.Data(values=values))  # type: ignore[no-untyped-call]


def _finish(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    configured: alt.TopLevelMixin = (
        chart.configure(aria=False)
        .configure_view(stroke=None)
        .configure_axis(labelFontSize=11, titleFontSize=12)
    )
    return configured


def quality_chart(downloads: Sequence[DownloadFacts]) -> alt.TopLevelMixin:
    """Rows per download: counted and skipped as bad, stacked; a tick at the rows declared."""
    order = [chart_label(d.id) for d in downloads]
    values = [
        {"download": chart_label(d.id), "kind": kind, "rows": rows}
        for d in downloads
        for kind, rows in (("counted", d.rows_counted - d.skipped), ("skipped as bad", d.skipped))
    ]
    declared = [{"download": chart_label(d.id), "rows": d.rows_declared} for d in downloads]
    y = _axis_y(order, "download")
    bars = (
        _base(values)
        .mark_bar()
        .encode(
            x=alt.X("sum(rows):Q", title="rows", axis=alt.Axis(format=",d")),
            y=y,
            color=alt.Color(
                "kind:N",
                title=None,
                scale=alt.Scale(
                    domain=["counted", "skipped as bad"],
                    range=[COLOURS["counted"], COLOURS["skipped"]],
                ),
                legend=alt.Legend(orient="bottom"),
            ),
        )
    )
    ticks = (
        _base(declared)
        .mark_tick(color="#111", thickness=2, size=ROW_HEIGHT - 4)
        .encode(x="rows:Q", y=y)
    )
    return _finish(alt.layer(bars, ticks).properties(width=WIDTH, height=_height(len(order))))


def count_heatmap(
    rows: list[dict[str, Any]], patients: Sequence[str], event_types: Sequence[str]
) -> alt.TopLevelMixin:
    """Patients by event type, the count in each cell, darker for more."""
    largest = max((r["count"] for r in rows), default=0)
    base = _base(_labelled(rows, "patient", "event_type")).encode(
        x=alt.X("event_type:N", title=None, sort=_labels(event_types),
                axis=alt.Axis(orient="top", labelAngle=0, labelLimit=0)),
        y=_axis_y(_labels(patients)),
    )  # fmt: skip
    cells = base.mark_rect().encode(
        color=alt.Color("count:Q", title="events", scale=alt.Scale(scheme="blues", domainMin=0),
                        legend=alt.Legend(format=",d"))
    )  # fmt: skip
    labels = base.mark_text(fontSize=11).encode(
        text=alt.Text("count:Q", format=",d"),
        color=alt.condition(
            alt.datum.count > largest * 0.55, alt.value("white"), alt.value("#111")
        ),
    )
    width = min(WIDTH, 110 * max(1, len(event_types)))
    return _finish(alt.layer(cells, labels).properties(width=width, height=_height(len(patients))))


def totals_chart(rows: list[dict[str, Any]]) -> alt.TopLevelMixin:
    """Events per event type over all patients."""
    base = _base(_labelled(rows, "event_type")).encode(
        y=_axis_y([chart_label(r["event_type"]) for r in rows], "event_type"),
        x=alt.X("count:Q", title="events", axis=alt.Axis(format=",d")),
    )  # fmt: skip
    bars = base.mark_bar(color=COLOURS["counted"])
    labels = base.mark_text(align="left", dx=3, fontSize=11).encode(
        text=alt.Text("count:Q", format=",d")
    )
    return _finish(alt.layer(bars, labels).properties(width=WIDTH, height=_height(len(rows))))


def range_chart(
    rows: list[dict[str, Any]], normal: tuple[float, float] | None
) -> alt.TopLevelMixin:
    """Each patient's min-max range as a line and mean as a dot, over the normal range's band."""
    rows = _labelled(rows, "patient")
    order = [r["patient"] for r in rows]
    y = _axis_y(order)
    x = alt.X("min:Q", title="value", scale=alt.Scale(zero=False))
    layers: list[alt.Chart] = []
    if normal is not None:
        band = [{"low": normal[0], "high": normal[1]}]
        layers.append(
            _base(band)
            .mark_rect(color=COLOURS["band"], opacity=0.18)
            .encode(x=alt.X("low:Q", title="value", scale=alt.Scale(zero=False)), x2="high:Q")
        )
    layers.append(
        _base(rows).mark_rule(strokeWidth=2, color=COLOURS["counted"]).encode(x=x, x2="max:Q", y=y)
    )
    layers.append(
        _base(rows)
        .mark_point(filled=True, size=45, color=COLOURS["mean"], opacity=1)
        .encode(x=alt.X("mean:Q", title="value"), y=y)
    )
    return _finish(alt.layer(*layers).properties(width=NARROW, height=_height(len(order))))


def anomaly_chart(rows: list[dict[str, Any]]) -> alt.TopLevelMixin:
    """Anomalies / count per patient, highest first (rows come sorted)."""
    rows = _labelled(rows, "patient")
    order = [r["patient"] for r in rows]
    base = _base(rows).encode(
        y=_axis_y(order),
        x=alt.X("rate:Q", title="anomalies / count", axis=alt.Axis(format=".1~%")),
    )
    bars = base.mark_bar(color=COLOURS["skipped"])
    labels = base.mark_text(align="left", dx=3, fontSize=11).encode(
        text=alt.Text("rate:Q", format=".2%")
    )
    return _finish(alt.layer(bars, labels).properties(width=NARROW, height=_height(len(order))))


def gap_chart(rows: list[dict[str, Any]], places: int = 1) -> alt.TopLevelMixin:
    """The average gap between readings, in seconds, per patient (patients with one reading: none)."""
    present = _labelled([r for r in rows if r["latency"] is not None], "patient")
    order = [r["patient"] for r in present]
    base = _base(present).encode(
        y=_axis_y(order),
        x=alt.X("latency:Q", title="average gap between readings (s)"),
    )
    bars = base.mark_bar(color=COLOURS["counted"])
    labels = base.mark_text(align="left", dx=3, fontSize=11).encode(
        text=alt.Text("latency:Q", format=f",.{max(0, places)}f")
    )
    return _finish(alt.layer(bars, labels).properties(width=NARROW, height=_height(len(order))))
