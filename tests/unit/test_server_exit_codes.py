"""The server's exit statuses: pinned, and only ever given by name."""

from __future__ import annotations

import ast
from pathlib import Path

import export_server
from export_server.exitcodes import ExitCode, SizesExit

SERVER_SOURCES = sorted(Path(export_server.__file__).parent.glob("*.py"))
EXITS = {("sys", "exit"), ("os", "_exit")}


def test_exit_codes_are_pinned() -> None:
    assert {code.name: code.value for code in ExitCode} == {
        "OK": 0, "USAGE": 2, "INTERRUPTED": 130,
    }  # fmt: skip
    assert {code.name: code.value for code in SizesExit} == {"OK": 0, "WRONG": 1, "USAGE": 2}


def _is_number(node: ast.expr | None) -> bool:
    if isinstance(node, ast.UnaryOp):
        node = node.operand
    return isinstance(node, ast.Constant) and type(node.value) is int


def _bare_statuses(source: Path) -> list[str]:
    """Where `source` exits with a number, or a `main` returns one, instead of an enum member."""
    tree = ast.parse(source.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = (owner.id if isinstance(owner, ast.Name) else "", node.func.attr)
            if name in EXITS and node.args and _is_number(node.args[0]):
                found.append(f"{source.name}:{node.lineno}")
        if isinstance(node, ast.FunctionDef) and node.name == "main":
            for inner in ast.walk(node):
                if isinstance(inner, ast.Return) and _is_number(inner.value):
                    found.append(f"{source.name}:{inner.lineno}")
    return found


def test_no_bare_integer_is_an_exit_status() -> None:
    assert len(SERVER_SOURCES) > 10  # the scan sees the package
    assert [where for source in SERVER_SOURCES for where in _bare_statuses(source)] == []
