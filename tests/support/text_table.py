"""Read a table the tool prints (`--format table`): the cells of its rows, and their numbers."""

from __future__ import annotations

import re

from tests.support.html_page import number


def table_rows(text: str) -> list[list[str]]:
    """The rows of a table's text: the cells of each line between vertical bars."""
    return [
        [cell.strip() for cell in line.strip("│").split("│")]
        for line in text.splitlines()
        if line.startswith("│")
    ]


def numbers_by_row(text: str) -> dict[str, list[int | float | None]]:
    """patient id (or "totals") -> the numbers on its row, in column order."""
    return {
        cells[0]: [number(c) for c in cells[1:]]
        for cells in table_rows(text)
        if len(cells) > 1 and re.fullmatch(r"[\d,.]+|n/a", cells[1])
    }
