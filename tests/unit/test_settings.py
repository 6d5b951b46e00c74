"""argv and the environment resolved once into Settings: defaults, the environment given (never
the process's), the order of checks, and --version answering whatever else is said."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from export_tally.cli.arguments import build_parser
from export_tally.cli.settings import Settings, checkpoint_root, debug_asked, parse
from export_tally.errors import UsageError


def test_settings_say_what_the_defaults_are() -> None:
    """A command line with only an export id resolves to Settings() but for what it names."""
    resolved = parse(["demo"], {})
    assert resolved == Settings(
        export_id="demo", checkpoint_root=checkpoint_root(), given=(("export_id", "demo"),)
    )


def test_the_parser_and_the_settings_agree_on_every_default() -> None:
    parser, defaults = build_parser(Path("root")), Settings()
    # Options that Settings holds resolved, under another name or as what they turned into.
    resolved_elsewhere = {"server", "no_embedded", "no_checkpoint", "token", "header", "cacert",
                          "list", "client_id", "private_key", "scope",
                          "fhir", "types", "since", "key", "keep_job", "resume_job"}  # fmt: skip
    for action in parser._actions:
        if action.dest in ("help", "export_id") or action.dest in resolved_elsewhere:
            continue
        assert getattr(defaults, action.dest) == parser.get_default(action.dest), action.dest


def test_the_environment_given_is_read_not_the_process_s(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPORT_SERVER_URL", "http://elsewhere.example")
    monkeypatch.setenv("NO_COLOR", "1")
    resolved = parse(["demo"], {})
    assert (resolved.server_url, resolved.server_explicit, resolved.no_color) == (
        "http://127.0.0.1:8000", False, False,
    )  # fmt: skip


def test_the_environment_resolves_server_token_threshold_and_terminal() -> None:
    environ = {
        "EXPORT_SERVER_URL": "https://h.example/base/",
        "EXPORT_SERVER_TOKEN": "t0ken",
        "EXPORT_TALLY_IN_PROCESS_ROWS": "0",
        "EXPORT_TALLY_NO_EMBEDDED": "1",
        "COLUMNS": "120",
        "NO_COLOR": "yes",
    }
    resolved = parse(["demo", "--header", "X-Key:  v "], environ)
    assert (resolved.server_url, resolved.server_explicit) == ("https://h.example/base", True)
    assert resolved.headers == (("X-Key", "v"), ("Authorization", "Bearer t0ken"))
    assert (resolved.in_process_rows, resolved.embedded_allowed) == (0, False)
    assert (resolved.columns, resolved.no_color) == (120, True)
    assert "t0ken" not in repr(resolved)


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        pytest.param([], {}, "an export id is required", id="no-export-id"),
        pytest.param(["x", "--server", "ftp://h"], {}, "--server 'ftp://h' is not", id="server"),
        pytest.param(
            ["x"],
            {"EXPORT_TALLY_IN_PROCESS_ROWS": "-1"},
            "$EXPORT_TALLY_IN_PROCESS_ROWS: -1 must be at least 0",
            id="threshold",
        ),
        pytest.param(["x", "--header", "nocolon"], {}, "--header must look like", id="header"),
        pytest.param(["x", "--cacert", "/no/such.pem"], {}, "--cacert /no/such.pem:", id="cacert"),
        pytest.param(["x", "-o", "/no/such/dir/o.json"], {}, "cannot write", id="output"),
        # Of several mistakes, the first a run always checked is named.
        pytest.param(["--server", "ftp://h", "-o", "/no/dir/o"], {}, "an export id", id="id-first"),
        pytest.param(
            ["x", "--server", "ftp://h", "-o", "/no/dir/o"],
            {},
            "cannot write",
            id="files-before-the-server",
        ),
        pytest.param(
            ["x", "--server", "ftp://h"],
            {"EXPORT_TALLY_IN_PROCESS_ROWS": "x"},
            "$EXPORT_TALLY_IN_PROCESS_ROWS",
            id="threshold-before-the-server",
        ),
    ],
)
def test_every_mistake_is_a_usage_error(
    argv: list[str], environ: dict[str, str], message: str
) -> None:
    with pytest.raises(UsageError) as caught:
        parse(argv, environ)
    assert str(caught.value).startswith(message), caught.value


def test_version_answers_whatever_else_is_said() -> None:
    resolved = parse(["--version", "--server", "ftp://h", "-o", "/no/dir/o"],
                     {"EXPORT_TALLY_IN_PROCESS_ROWS": "x"})  # fmt: skip
    assert resolved == Settings(version=True)


def test_insecure_wins_over_a_missing_ca_bundle() -> None:
    resolved = parse(["x", "--insecure", "--cacert", "/no/such.pem"], {})
    assert (resolved.tls_verify, resolved.insecure) == (False, True)


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().jobs = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("export_id", "place"),
    [
        pytest.param("demo", "demo", id="plain"),
        pytest.param("../up", "export-", id="hashed"),
    ],
)
def test_the_checkpoint_place(export_id: str, place: str, tmp_path: Path) -> None:
    resolved = dataclasses.replace(Settings(export_id=export_id), checkpoint_root=tmp_path)
    chosen = resolved.checkpoint_place("http://h")
    assert chosen.parent.parent == tmp_path and chosen.name.startswith(place)
    assert len(chosen.parent.name) == 16  # the server's identity, hashed
    assert resolved.checkpoint_place("http://other") != chosen
    explicit = dataclasses.replace(resolved, checkpoint_dir=tmp_path / "mine")
    assert explicit.checkpoint_place("http://h") == tmp_path / "mine"


@pytest.mark.parametrize(
    ("argv", "asked"),
    [
        (["x", "--debug"], True),
        (["x", "--deb"], True),  # the parser takes a prefix
        (["x", "--bogus", "--debug"], True),  # does not parse: spelt out
        (["x", "--bogus", "--deb"], False),
        (["x"], False),
    ],
)
def test_debug_asked(argv: list[str], asked: bool) -> None:
    assert debug_asked(argv) is asked
