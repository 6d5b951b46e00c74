"""The tool keeps its layers: cli -> render -> scheduling -> transport -> core -> errors, httpx in
transport only, a pure core, an error module that imports nothing of the package, no import cycles
(not even through imports for type checking only), and short import chains (see
tests/support/layering.py for the table)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.layering import (
    EDGE,
    internal_edges,
    layer_of,
    longest_chain,
    read_package,
    violations,
)

SOURCE = Path(__file__).resolve().parents[2] / "src"
MAX_CHAIN = 7  # modules on the longest import chain from __main__


def test_the_tool_keeps_its_layers() -> None:
    assert violations(read_package(SOURCE, "export_tally"), "export_tally") == []


def test_the_longest_import_chain_is_short() -> None:
    modules = read_package(SOURCE, "export_tally")
    chain = longest_chain(internal_edges(modules), "export_tally.__main__")
    assert len(chain) <= MAX_CHAIN, " -> ".join(chain)


def test_no_module_is_left_loose_at_the_top() -> None:
    """Every module is in a layer (a subpackage, or the error tree below them all), except the
    version (`__init__`) and `python -m`'s `__main__`."""
    loose = {
        name
        for name in read_package(SOURCE, "export_tally")
        if layer_of("export_tally", name) == EDGE
    }
    assert loose == {"export_tally.__main__"}, sorted(loose)


def test_the_tool_never_imports_the_server() -> None:
    modules = read_package(SOURCE, "export_tally")
    assert not [
        m.name for m in modules.values() if any(i.startswith("export_server") for i in m.imports)
    ]


def _plant(tmp_path: Path, files: dict[str, str]) -> list[str]:
    """A synthetic package `pkg` made of `files` (relative path -> source); its violations."""
    for relative, source in {
        "pkg/__init__.py": "",
        "pkg/core/__init__.py": "",
        "pkg/transport/__init__.py": "",
        "pkg/scheduling/__init__.py": "",
        "pkg/render/__init__.py": "",
        "pkg/cli/__init__.py": "",
        **files,
    }.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return violations(read_package(tmp_path, "pkg"), "pkg")


def test_a_clean_synthetic_tree_passes(tmp_path: Path) -> None:
    assert (
        _plant(
            tmp_path,
            {
                "pkg/errors.py": "class PkgError(Exception): ...\n",
                "pkg/core/tally.py": "import collections\nfrom pkg.errors import PkgError\n",
                "pkg/transport/fetch.py": "import httpx\nfrom pkg.core import tally\n",
                "pkg/scheduling/run.py": "from pkg.transport.fetch import x\n",
                "pkg/render/table.py": "from pkg.scheduling import run\n",
                "pkg/cli/command.py": "from pkg.render import table\nfrom pkg import __version__\n",
                "pkg/__main__.py": "from pkg.cli.command import main\n",
            },
        )
        == []
    )


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param(
            {
                "pkg/core/tally.py": "def f():\n    from pkg.transport import fetch\n",
                "pkg/transport/fetch.py": "",
            },
            "pkg.core.tally (core) imports pkg.transport.fetch (transport)",
            id="core-imports-upwards-inside-a-function",
        ),
        pytest.param(
            {"pkg/transport/fetch.py": "from pkg.cli import command\n", "pkg/cli/command.py": ""},
            "pkg.transport.fetch (transport) imports pkg.cli.command (cli)",
            id="transport-imports-the-cli",
        ),
        pytest.param(
            {"pkg/render/table.py": "from pkg.cli import progress\n", "pkg/cli/progress.py": ""},
            "pkg.render.table (render) imports pkg.cli.progress (cli)",
            id="render-imports-the-cli",
        ),
        pytest.param(
            {
                "pkg/scheduling/run.py": "def f():\n    from pkg.render import table\n",
                "pkg/render/table.py": "",
            },
            "pkg.scheduling.run (scheduling) imports pkg.render.table (render)",
            id="scheduling-imports-render",
        ),
        pytest.param(
            {"pkg/render/table.py": "from pkg import __main__\n", "pkg/__main__.py": ""},
            "pkg.render.table (render) imports pkg.__main__ (edge)",
            id="render-imports-a-loose-module",
        ),
        pytest.param(
            {"pkg/scheduling/run.py": "import httpx\n"},
            "pkg.scheduling.run imports httpx",
            id="httpx-outside-transport",
        ),
        pytest.param(
            {"pkg/core/records.py": "import os\n"},
            "pkg.core.records imports os",
            id="core-does-io",
        ),
        pytest.param(
            {"pkg/core/records.py": "def f(p):\n    return open(p).read()\n"},
            "pkg.core.records calls open()",
            id="core-opens-a-file",
        ),
        pytest.param(
            {"pkg/core/a.py": "from pkg.core import b\n", "pkg/core/b.py": "import pkg.core.a\n"},
            "import cycle: pkg.core.a -> pkg.core.b -> pkg.core.a",
            id="cycle",
        ),
        pytest.param(
            {"pkg/errors.py": "from pkg.core import tally\n", "pkg/core/tally.py": ""},
            "pkg.errors (errors) imports pkg.core.tally (core)",
            id="the-errors-module-imports-the-package",
        ),
        pytest.param(
            {"pkg/errors.py": "import pkg\n"},
            "pkg.errors (errors) imports pkg (root)",
            id="the-errors-module-imports-the-version",
        ),
        pytest.param(
            {
                "pkg/transport/driver.py": "from pkg.transport import api\n",
                "pkg/transport/api.py": (
                    "from typing import TYPE_CHECKING\n"
                    "if TYPE_CHECKING:\n    from pkg.transport.driver import Exchange\n"
                ),
            },
            "import cycle: pkg.transport.api -> pkg.transport.driver -> pkg.transport.api",
            id="cycle-through-type-checking",
        ),
        pytest.param(
            {
                "pkg/core/__init__.py": "from pkg.transport.fetch import x\n",
                "pkg/transport/fetch.py": "",
            },
            "pkg.core (core) imports pkg.transport.fetch (transport)",
            id="re-exporting-init-counts",
        ),
    ],
)
def test_a_planted_violation_is_found(tmp_path: Path, files: dict[str, str], expected: str) -> None:
    found = _plant(tmp_path, files)
    assert any(line.startswith(expected) for line in found), found


def test_imports_for_type_checking_only_do_not_count(tmp_path: Path) -> None:
    source = (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.transport import fetch\n"
    )
    assert _plant(tmp_path, {"pkg/core/tally.py": source, "pkg/transport/fetch.py": ""}) == []


def test_a_long_chain_is_measured(tmp_path: Path) -> None:
    for name, source in {
        "pkg/__init__.py": "",
        "pkg/__main__.py": "from pkg import a\n",
        "pkg/a.py": "from pkg import b\n",
        "pkg/b.py": "from pkg import c\n",
        "pkg/c.py": "",
    }.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(source)
    edges = internal_edges(read_package(tmp_path, "pkg"))
    assert len(longest_chain(edges, "pkg.__main__")) == 4  # __main__ -> a -> b -> c
