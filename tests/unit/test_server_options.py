"""The server's options: defaults, and a one-line error (exit 2) for every bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from export_server.options import default_workers, parse_args


def test_defaults() -> None:
    args = parse_args([])
    assert (args.host, args.port, args.workers) == ("127.0.0.1", 8000, default_workers())
    assert (args.cache_dir, args.no_cache, args.clear_cache, args.prewarm) == (
        None,
        False,
        False,
        (),
    )
    assert not args.exit_with_parent and not args.no_range
    assert args.retry_after == 1


def test_new_flags_parse() -> None:
    args = parse_args(
        ["--workers", "3", "--cache-dir", "/tmp/c", "--clear-cache", "--prewarm", "demo, small",
         "--exit-with-parent"]
    )  # fmt: skip
    assert args.workers == 3 and args.cache_dir == Path("/tmp/c") and args.clear_cache
    assert args.prewarm == ("demo", "small") and args.exit_with_parent
    assert parse_args(["--retry-after", "7"]).retry_after == 7
    assert parse_args(["--retry-after", "0"]).retry_after == 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--workers", "0"], "less than 1"),
        (["--workers", "two"], "not a whole number"),
        (["--prewarm", "demo,huge"], "not a list of exports (choose from demo, small, large)"),
        (["--prewarm", ","], "not a list of exports"),
        (["--no-cache", "--prewarm", "demo"], "--no-cache: not allowed with --prewarm"),
        (["--no-cache", "--cache-dir", "x"], "--no-cache: not allowed with --cache-dir"),
        (["--no-cache", "--clear-cache"], "--no-cache: not allowed with --clear-cache"),
        (["--port", "70000"], "outside 0-65535"),
        (["--retry-after", "-1"], "is less than 0"),
        (["--retry-after", "0.5"], "not a whole number of seconds"),
        (["--fhir-clients", "c.json", "--fhir-token-seconds", "301"], "more than 300"),
        (["--fhir-clients", "c.json", "--fhir-token-seconds", "0"], "less than 1"),
        (["--fhir-token-seconds", "5"], "--fhir-token-seconds goes with --fhir-clients"),
    ],
)
def test_bad_values_exit_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(argv)
    assert exited.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0]
