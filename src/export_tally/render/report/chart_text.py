"""Text made safe for the chart renderer: labels it can draw, and never one that stops it.

The renderer (vl-convert) turns each label into a small SVG document and parses it as XML; a
character XML cannot hold (a control character, a lone surrogate, U+FFFE) makes it panic, and a
panic there aborts the whole process. So a chart never gets the server's text itself, only its
label: printable characters as they are, every other one (C0 and C1 controls, DEL, bidi and
zero-width format characters, surrogates, noncharacters, private use, unassigned) and the
backslash written as a Python escape (`\\x1b`, `\\u202e`, `\\\\`), so distinct texts keep
distinct labels. A label longer than `LABEL_LIMIT` is cut, and ends in a short digest of the
whole text so that cut labels stay distinct. The report's tables show the exact text.
"""

from __future__ import annotations

import hashlib

LABEL_LIMIT = (
    60  # characters of a label before it is cut (an axis of 10,000-character ids is no chart)
)
_DIGEST = 8  # hex digits of the digest that ends a cut label


def _is_drawable(char: str) -> bool:
    code = ord(char)
    if 0xFDD0 <= code <= 0xFDEF or (code & 0xFFFE) == 0xFFFE:
        return False  # noncharacters: XML may hold some, but no renderer should get them
    return char.isprintable() and char != "\\"


def chart_label(text: str) -> str:
    """`text` as a chart may show it: only printable characters, at most `LABEL_LIMIT` + 10.

    Injective: two different texts never get the same label (escapes are unambiguous, and a cut
    label carries a digest of the whole text).
    """
    shown = "".join(
        c if _is_drawable(c) else c.encode("unicode_escape", "backslashreplace").decode("ascii")
        for c in text
    )
    if len(shown) <= LABEL_LIMIT:
        return shown
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:_DIGEST]
    return f"{shown[:LABEL_LIMIT]}…#{digest}"
