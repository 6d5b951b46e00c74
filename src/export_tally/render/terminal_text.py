"""Text for a terminal: what a server sent, shown so that it can never act on the terminal.

Every character that is not printable (C0 and C1 controls, DEL, NUL, the bidi controls such as
U+202E, zero-width and other format characters, line and paragraph separators, surrogates,
unassigned code points) is written as its Python escape (`\\x1b`, `\\u202e`): no escape
sequence reaches the terminal, no line is broken, no text is reordered. The rest is as sent.
Used for tables (`table.py`) and for every line on stderr (`cli.py`).
"""

from __future__ import annotations


def for_terminal(text: str) -> str:
    """`text` as the terminal should print it: non-printable characters escaped, the rest as is."""
    if text.isprintable():
        return text  # the common case, at C speed
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape", "backslashreplace").decode("ascii")
        for c in text
    )
