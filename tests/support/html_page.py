"""Read an HTML report without a browser: a strict little tree, its tables, and its references.

`parse` fails on a tag closed out of order or left open, so a page that parses here is well
formed. Tag names are lower-cased (as the HTML parser does, `linearGradient` included).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}  # fmt: skip
# Attributes that make a browser load something, when they name anything but a fragment (#id).
LOADING = {"href", "xlink:href", "src", "srcset", "action", "formaction", "poster", "data",
           "background", "ping", "cite", "longdesc", "manifest", "codebase", "archive"}  # fmt: skip
URL_IN_CSS = re.compile(r"url\(\s*['\"]?([^'\")]*)", re.I)


@dataclass
class Node:
    tag: str
    attrs: dict[str, str | None] = field(default_factory=dict)
    children: list[Node | str] = field(default_factory=list)

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.walk()

    def find_all(self, tag: str, cls: str | None = None) -> list[Node]:
        return [
            n
            for n in self.walk()
            if n.tag == tag and (cls is None or cls in (n.attrs.get("class") or "").split())
        ]

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document")
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs))
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        open_tag = self.stack[-1].tag
        assert open_tag == tag, f"</{tag}> closes <{open_tag}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(page: str) -> Node:
    """The page's tree; AssertionError when a tag is closed out of order or left open."""
    builder = _Builder()
    builder.feed(page)
    builder.close()
    assert len(builder.stack) == 1, f"<{builder.stack[-1].tag}> is never closed"
    return builder.root


@dataclass
class Table:
    caption: str
    headers: list[str]
    rows: list[list[str]]
    foot: list[str] | None


def _cells(row: Node) -> list[str]:
    return [c.text() for c in row.children if isinstance(c, Node) and c.tag in ("th", "td")]


def tables(node: Node) -> list[Table]:
    found = []
    for table in node.find_all("table"):
        captions = table.find_all("caption")
        head = table.find_all("thead")
        foot = table.find_all("tfoot")
        body = table.find_all("tbody")
        found.append(
            Table(
                captions[0].text() if captions else "",
                _cells(head[0].find_all("tr")[0]) if head else [],
                [_cells(r) for r in body[0].find_all("tr")] if body else [],
                _cells(foot[0].find_all("tr")[0]) if foot else None,
            )
        )
    return found


def number(cell: str) -> int | float | None:
    """A table's number as the JSON has it: `3,106` -> 3106, `79.2` -> 79.2, `n/a` -> None."""
    if cell == "n/a":
        return None
    plain = cell.replace(",", "")
    return float(plain) if "." in plain else int(plain)


def external_references(root: Node) -> list[str]:
    """Everything in the page that would make a browser load something: should be nothing."""
    found = []
    for node in root.walk():
        if node.tag in ("script", "link", "iframe", "img", "object", "embed", "base", "frame",
                        "audio", "video", "source", "track"):  # fmt: skip
            found.append(f"<{node.tag}>")
        if node.tag == "meta" and (node.attrs.get("http-equiv") or "").lower() == "refresh":
            found.append("<meta http-equiv=refresh>")
        for name, value in node.attrs.items():
            value = value or ""
            if name in LOADING and not value.startswith("#"):
                found.append(f"{name}={value!r}")
            if name == "style" or name in ("fill", "stroke", "filter", "clip-path", "mask"):
                found += [u for u in URL_IN_CSS.findall(value) if not u.startswith("#")]
        if node.tag == "style":
            css = node.text()
            found += [u for u in URL_IN_CSS.findall(css) if not u.startswith("#")]
            if "@import" in css:
                found.append("@import")
    return found
