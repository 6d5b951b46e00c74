"""The commands a user gets: `cli` and `server`, and the same programs under their installed names
`export-tally` and `export-tally-server` (what `uv tool install .` or pipx put on PATH)."""

from __future__ import annotations

import tomllib
from importlib import import_module
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def scripts() -> dict[str, str]:
    found: dict[str, str] = tomllib.loads(PYPROJECT.read_text())["project"]["scripts"]
    return found


def test_the_installed_names_run_the_same_programs() -> None:
    found = scripts()
    assert found["export-tally"] == found["cli"]
    assert found["export-tally-server"] == found["server"]


def test_every_script_names_a_function_that_exists() -> None:
    for name, target in scripts().items():
        module, _, function = target.partition(":")
        assert callable(getattr(import_module(module), function)), name
