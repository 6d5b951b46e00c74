"""Text for the HTML page: escaped, and valid HTML whatever characters it holds.

`html.escape` makes markup of the data impossible (`<`, `>`, `&` and both quotes become
references). What HTML cannot carry at all is shown as a Python escape instead (`\\x1b`,
`\\ud800`): control characters other than tab, newline and carriage return (C0, DEL, C1: a
parse error in HTML, and NUL is replaced by the browser), lone surrogates (no UTF-8 can hold
them) and noncharacters (U+FFFE, U+FDD0...). Every other character is the data's own, exactly:
bidi controls, zero-width characters and characters outside the BMP included (a table cell is
a paragraph of its own, so a right-to-left override reorders no text but its own cell's).
"""

from __future__ import annotations

import html
import re

_NOT_HTML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff"
                       "\U0001fffe\U0001ffff\U0002fffe\U0002ffff\U0003fffe\U0003ffff"
                       "\U0004fffe\U0004ffff\U0005fffe\U0005ffff\U0006fffe\U0006ffff"
                       "\U0007fffe\U0007ffff\U0008fffe\U0008ffff\U0009fffe\U0009ffff"
                       "\U000afffe\U000affff\U000bfffe\U000bffff\U000cfffe\U000cffff"
                       "\U000dfffe\U000dffff\U000efffe\U000effff\U000ffffe\U000fffff"
                       "\U0010fffe\U0010ffff]")  # fmt: skip


def _escape(found: re.Match[str]) -> str:
    return found[0].encode("unicode_escape", "backslashreplace").decode("ascii")


def escaped(text: str) -> str:
    """`text` as HTML text or an attribute value: markup escaped, non-HTML characters shown."""
    return html.escape(_NOT_HTML.sub(_escape, text), quote=True)
