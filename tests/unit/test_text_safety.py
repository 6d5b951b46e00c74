"""What makes server text safe for each place it goes: the terminal, the chart renderer, the HTML
page and a spreadsheet; each is checked on its own against hostile texts (Hypothesis)."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from export_tally.render.formats import exact_text, render_csv, spreadsheet_text
from export_tally.render.report.chart_text import LABEL_LIMIT, chart_label
from export_tally.render.report.html_text import escaped
from export_tally.render.terminal_text import for_terminal
from tests.support.hostile_text import hostile_texts, not_html, raw_controls

# Lone surrogates too: JSON from a server can hold them, a CSV body cannot.
ANY_TEXT = hostile_texts() | st.text(st.characters(), min_size=1)


@settings(max_examples=40, deadline=None)
@given(ANY_TEXT)
def test_a_terminal_gets_no_raw_control_character(text: str) -> None:
    shown = for_terminal(text)
    assert not raw_controls(shown) and "\n" not in shown
    assert shown.encode("utf-8")  # printable: never a lone surrogate


@settings(max_examples=40, deadline=None)
@given(ANY_TEXT)
def test_a_chart_label_is_short_and_xml_can_hold_it(text: str) -> None:
    label = chart_label(text)
    assert len(label) <= LABEL_LIMIT + 10
    assert not not_html(label) and not raw_controls(label)
    ET.fromstring(f"<text>{escaped(label)}</text>")  # what the renderer does with it


@settings(max_examples=40, deadline=None)
@given(ANY_TEXT, ANY_TEXT)
def test_different_texts_get_different_labels(a: str, b: str) -> None:
    assert (chart_label(a) == chart_label(b)) == (a == b)


@pytest.mark.parametrize(
    "text, label",
    [
        ("hr\x1b[31m", "hr\\x1b[31m"),
        ("a\\x1b", "a\\\\x1b"),  # a backslash is escaped too: no two texts share a label
        ("\u202eabc\u200b", "\\u202eabc\\u200b"),
        ("\ufffe\U0001f600", "\\ufffe\U0001f600"),
    ],
)
def test_chart_labels(text: str, label: str) -> None:
    assert chart_label(text) == label


def test_a_long_text_is_cut_with_a_digest_of_the_whole() -> None:
    a, b = "x" * 10_000, "x" * 9_999 + "y"
    assert chart_label(a).startswith("x" * LABEL_LIMIT + "…#")
    assert chart_label(a) != chart_label(b)


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.tags = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags += 1

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


@settings(max_examples=40, deadline=None)
@given(ANY_TEXT)
def test_html_text_is_markup_free_valid_and_exact_where_html_can_be(text: str) -> None:
    page = escaped(text)
    reader = _Text()
    reader.feed(f"<p>{page}</p>")
    reader.close()
    assert reader.tags == 1 and not not_html(page)
    if not not_html(text):
        assert "".join(reader.parts) == text


@settings(max_examples=40, deadline=None)
@given(ANY_TEXT.filter(lambda t: not not_html(t[:1])))
def test_a_spreadsheet_runs_no_formula_and_the_text_comes_back(text: str) -> None:
    cell = spreadsheet_text(text)
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert exact_text(cell) == text


@settings(max_examples=40, deadline=None)
@given(st.lists(hostile_texts(), min_size=1, max_size=4, unique=True))
def test_csv_round_trips_through_csv_reader(names: list[str]) -> None:
    report = {
        "patients": {n: {t: 1 for t in names} for n in names},
        "totals": {n: len(names) for n in names},
    }
    rows = list(csv.reader(io.StringIO(render_csv(report))))[1:]
    assert {(exact_text(p), exact_text(t)) for p, t, _ in rows} == {
        (p, t) for p in names for t in names
    }


def test_numbers_are_never_protected() -> None:
    report = {"patients": {"-p": {"t": {"count": 1, "mean": -5.5, "min": -6, "max": -5, "anomalies": None, "latency": None}}},
              "totals": {}}  # fmt: skip
    assert render_csv(report, stats=True).splitlines()[1] == "'-p,t,1,-5.5,-6,-5,,"
