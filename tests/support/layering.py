"""Read a package's imports with `ast` and check them against the tool's table of layers.

The tool is built in layers, each allowed to import only the layers below it:

    __main__ (`python -m export_tally`: the only module loose at the top)
      -> cli/ (argv and the environment into Settings, the console, exit codes, bundled server)
        -> render/ (JSON, CSV, tables, number formatting, the HTML report, atomic files)
          -> scheduling/ (tasks, executors, worker processes, the run, checkpoints)
            -> transport/ (the only home of httpx)
              -> core/ (pure: bytes in, values out)
                -> errors.py (the whole error tree; imports nothing of the package)

The package's own `__init__` (the version string) may be imported from anywhere but the core and
the errors module, and imports nothing of the package. For the layers, every import counts,
inside functions too, except those under `if TYPE_CHECKING:` (they never run); for cycles those
count as well, since two modules that name each other's types are one module in two files.
Importing a package counts as importing its `__init__`, so an `__init__` that re-exports counts
as what it imports.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = "root"  # the package's own __init__
# Subpackages (and the one module, errors.py), lowest first.
LAYERS = ("errors", "core", "transport", "scheduling", "render", "cli")
EDGE = "edge"  # a module loose at the top of the package (only __main__ is meant to be)

# Which layers each layer may import (itself included).
ALLOWED: dict[str, frozenset[str]] = {
    ROOT: frozenset({ROOT}),
    "errors": frozenset({"errors"}),  # the error tree imports nothing of the package
    "core": frozenset({"errors", "core"}),
    "transport": frozenset({ROOT, "errors", "core", "transport"}),
    "scheduling": frozenset({ROOT, "errors", "core", "transport", "scheduling"}),
    "render": frozenset({ROOT, "errors", "core", "transport", "scheduling", "render"}),
    "cli": frozenset({ROOT, "errors", "core", "transport", "scheduling", "render", "cli"}),
    EDGE: frozenset({ROOT, "errors", "core", "transport", "scheduling", "render", "cli", EDGE}),
}

# Modules the pure core may not import: the network, files, processes, clocks, logging.
IMPURE = frozenset(
    {
        "asyncio", "concurrent", "http", "httpx", "io", "logging", "multiprocessing", "os",
        "pathlib", "select", "selectors", "shutil", "signal", "socket", "ssl", "subprocess",
        "sys", "tempfile", "threading", "time", "urllib",
    }
)  # fmt: skip
IN_MEMORY = frozenset({"io.BytesIO"})
"""Names from an IMPURE module that do no I/O (a buffer in memory): the core may import them."""
# Calls that read a clock or touch files and streams, whatever module they come from.
IMPURE_CALLS = frozenset({"open", "print", "input", "now", "today", "utcnow"})
HTTPX_HOME = "transport"  # httpx may be imported only by modules directly in this subpackage


@dataclass(frozen=True)
class Module:
    name: str  # dotted, e.g. "export_tally.core.counts.tally"; a package is named by its __init__'s name
    path: Path
    imports: frozenset[str]  # every module imported, dotted (the package's and others')
    calls: frozenset[str]  # names called: `open(...)`, `x.now(...)`
    typing_imports: frozenset[str] = frozenset()  # those under `if TYPE_CHECKING:` only

    @property
    def is_package(self) -> bool:
        return self.path.name == "__init__.py"


def layer_of(package: str, module: str) -> str:
    """The layer a module of `package` belongs to."""
    if module == package:
        return ROOT
    parts = module.split(".")
    return parts[1] if len(parts) >= 2 and parts[1] in LAYERS else EDGE


def _nodes(tree: ast.Module) -> Iterator[tuple[ast.AST, bool]]:
    """Every node of the tree, and whether it is under `if TYPE_CHECKING:` (never run)."""
    stack: list[tuple[ast.AST, bool]] = [(tree, False)]
    while stack:
        node, typing_only = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend((child, True) for child in node.body)
            stack.extend((child, typing_only) for child in node.orelse)
            continue
        yield node, typing_only
        stack.extend((child, typing_only) for child in ast.iter_child_nodes(node))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def read_module(name: str, path: Path, known: set[str]) -> Module:
    """Parse one file; `known` is every module name of the package (to tell `from a import b`
    of a submodule `b` from that of a name `b`)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    imports: set[str] = set()
    typing_imports: set[str] = set()
    calls: set[str] = set()
    for node, typing_only in _nodes(tree):
        into = typing_imports if typing_only else imports
        if isinstance(node, ast.Import):
            into.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = {f"{base}.{alias.name}" for alias in node.names}
            if names <= IN_MEMORY:
                into.update(names)  # only names that do no I/O, not their module
                continue
            into.add(base)
            into.update(
                f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in known
            )
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name):
                calls.add(func.id)
            elif isinstance(func, ast.Attribute):
                calls.add(func.attr)
    return Module(
        name, path, frozenset(imports), frozenset(calls), frozenset(typing_imports - imports)
    )


def read_package(source: Path, package: str) -> dict[str, Module]:
    """Every module of `package`, which lives in `source / package`."""
    top = source / package
    names: dict[str, Path] = {}
    for path in sorted(top.rglob("*.py")):
        parts = list(path.relative_to(source).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    known = set(names)
    return {name: read_module(name, path, known) for name, path in names.items()}


def internal_edges(modules: dict[str, Module], typing_too: bool = False) -> dict[str, set[str]]:
    """For each module, the modules of the package it imports (not itself); with `typing_too`,
    those it imports under `if TYPE_CHECKING:` as well."""
    return {
        name: {
            other
            for other in (module.imports | module.typing_imports if typing_too else module.imports)
            if other in modules and other != name
        }
        for name, module in modules.items()
    }


def violations(modules: dict[str, Module], package: str) -> list[str]:
    """Every broken rule, one readable line each; empty when the package keeps its layers."""
    found: list[str] = []
    edges = internal_edges(modules)
    for name, module in sorted(modules.items()):
        layer = layer_of(package, name)
        for other in sorted(edges[name]):
            if layer_of(package, other) not in ALLOWED[layer]:
                found.append(
                    f"{name} ({layer}) imports {other} ({layer_of(package, other)}): "
                    f"{layer} may import only {sorted(ALLOWED[layer])}"
                )
        for imported in sorted(module.imports):
            top = imported.split(".")[0]
            if top == "httpx" and (
                layer != HTTPX_HOME or name.count(".") != 2 or module.is_package
            ):
                found.append(f"{name} imports httpx: only modules directly in {HTTPX_HOME}/ may")
            if layer == "core" and top in IMPURE and imported not in IN_MEMORY:
                found.append(f"{name} imports {imported}: the core does no I/O")
        if layer == "core":
            for call in sorted(module.calls & IMPURE_CALLS):
                found.append(f"{name} calls {call}(): the core does no I/O and reads no clock")
    every_edge = internal_edges(modules, typing_too=True)
    found.extend(f"import cycle: {' -> '.join(cycle)}" for cycle in cycles(every_edge))
    return found


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a closed path) per strongly connected group of modules that import round."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return [[*group, group[0]] for group in groups]


def longest_chain(edges: dict[str, set[str]], start: str) -> list[str]:
    """The longest import chain from `start`, as the modules on it (the graph has no cycles)."""
    best: dict[str, list[str]] = {}
    visiting: set[str] = set()  # a cycle is reported by `violations`; here it only must not loop

    def chain(node: str) -> list[str]:
        if node in visiting:
            return []
        if node not in best:
            visiting.add(node)
            tails = [chain(nxt) for nxt in sorted(edges[node])]
            visiting.discard(node)
            best[node] = [node, *max(tails, key=len, default=[])]
        return best[node]

    return chain(start)
