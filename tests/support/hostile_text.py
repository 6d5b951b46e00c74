"""Texts a hostile or broken server may send as ids and event types, and the checks that every
output shows them only as data.

`hostile_texts()` draws from pieces chosen to break something: C0 and C1 controls, DEL and NUL,
the bidi controls, zero-width characters, characters outside the BMP, noncharacters, markup and
CDATA ends, terminal escape sequences, spreadsheet formulas, CSV quoting and line breaks, and
ids of 10,000 characters. Never a lone surrogate: a CSV body is UTF-8, which cannot hold one.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from hypothesis import strategies as st

C0 = [chr(c) for c in range(0x20)]
C1 = [chr(c) for c in range(0x80, 0xA0)]
BIDI = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069",
        "\u200e", "\u200f", "\u061c"]  # fmt: skip
ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]
ODD = ["\x7f", "\x00", "\ufffe", "\uffff", "\ufdd0", "\U0001f600", "\U0001d400", "\U0010fffd",
       "\U0010ffff", "\u2028", "\u2029", "\u0301", "é"]  # fmt: skip
SNIPPETS = ["<", ">", "&", '"', "'", ",", "\n", "\r\n", "\\", "]]>", "</svg>", "<script>alert(1)</script>",
            '"><img src=x onerror=alert(1)>', "</svg><svg onload=alert(1)>", "<!--", "&amp;",
            "=HYPERLINK(\"http://x\")", "=1+1", "+1", "-1", "@SUM(A1)", "\x1b]0;title\x07",
            "\x1b[31m", "\x1b[2J", "P", "hr"]  # fmt: skip
PIECES = [*SNIPPETS, *C0, *C1, *BIDI, *ZERO_WIDTH, *ODD]
LONG = 10_000

# What every (format, --stats) pair sees at least once in the fast tier: the pieces that once
# aborted the renderer, markup, a formula, and a 10,000-character id.
WORST = {
    "patients": ["P\x1b]0;x\x07", "=HYPERLINK(\"http://x\")", "<script>alert(1)</script>\u202e",
                 ("\x00\ufffe</svg>]]>" * LONG)[:LONG]],
    "types": ["hr\x1b[31m", "\u202egnp.exe\u200b", "@cmd|'/c calc'!A0", "\U0001f600&<"],
}  # fmt: skip


def hostile_texts() -> st.SearchStrategy[str]:
    """A non-empty text of hostile pieces; sometimes 10,000 characters long."""
    short = st.lists(st.sampled_from(PIECES) | st.characters(exclude_categories=["Cs"]),
                     min_size=1, max_size=8).map("".join)  # fmt: skip
    long = short.map(lambda text: (text * LONG)[:LONG])
    return st.one_of(short, short, short, long)


def raw_controls(text: str) -> set[str]:
    """The characters of `text` that could act on a terminal (anything not printable but `\\n`)."""
    return {c for c in text if not c.isprintable() and c != "\n"}


# What HTML cannot carry: controls other than tab, newline and carriage return, surrogates and
# noncharacters (parse errors; NUL a browser even replaces).
NOT_HTML = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef]|[\ufffe\uffff]"
)


def not_html(text: str) -> set[str]:
    """Characters of `text` that valid HTML cannot hold (planes 1-16's noncharacters too)."""
    found = set(NOT_HTML.findall(text))
    return found | {c for c in text if ord(c) > 0xFFFF and ord(c) & 0xFFFE == 0xFFFE}


SVG = re.compile(r"<svg\b.*?</svg>", re.S)


def svgs_of(page: str) -> list[str]:
    return SVG.findall(page)


def parses_as_xml(svg: str) -> bool:
    try:
        ET.fromstring(svg)
    except ET.ParseError:
        return False
    return True
