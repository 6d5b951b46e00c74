"""The server's command-line options: the parser, and the checks that turn bad values into exit 2."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from export_server.cache import default_cache_dir
from export_server.dataset import EXPORTS
from export_server.fhir_config import add_arguments as add_fhir_arguments

if TYPE_CHECKING:
    from collections.abc import Callable


def default_workers() -> int:
    """The number of CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is outside [0, 1]")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is outside 0-65535 (0 picks a free port)")
    return value


def _whole_number(minimum: int, unit: str = "") -> Callable[[str], int]:
    """An argparse type: a whole number (of `unit`) at least `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number{unit}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text} is less than {minimum}")
        return value

    return parse


_whole_seconds = _whole_number(0, " of seconds")
positive_int = _whole_number(1)


def _token_seconds(text: str) -> int:
    value = _whole_number(1, " of seconds")(text)
    if value > 300:  # SMART Backend Services: a token lives at most five minutes
        raise argparse.ArgumentTypeError(f"{text} is more than 300")
    return value


def export_list(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in EXPORTS]
    if unknown or not names:
        known = ", ".join(EXPORTS)
        raise argparse.ArgumentTypeError(f"{text!r}: not a list of exports (choose from {known})")
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="server",
        description="Mock healthcare bulk-export server: byte-identical to the reference.",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to bind (default: 127.0.0.1; 0.0.0.0 for all)",
    )
    parser.add_argument(
        "--port", type=_port, default=8000, help="port (default: 8000; 0 picks a free one)"
    )
    parser.add_argument(
        "--log-level", default="warning",
        choices=["critical", "error", "warning", "info", "debug", "trace"], help="default: warning",
    )  # fmt: skip
    parser.add_argument(
        "--fail-rate",
        type=_rate,
        default=0.0,
        metavar="P",
        help="answer this fraction of requests with 503/429 (with Retry-After) or 500",
    )
    parser.add_argument(
        "--retry-after",
        type=_whole_seconds,
        default=1,
        metavar="SECONDS",
        help="the Retry-After of injected 503/429 answers (default: 1; the tests use 0)",
    )
    parser.add_argument(
        "--drop-rate",
        type=_rate,
        default=0.0,
        metavar="P",
        help="cut this fraction of /data bodies off after a random number of bytes",
    )
    parser.add_argument(
        "--fault-seed",
        type=int,
        default=None,
        metavar="N",
        help="make injected faults reproducible",
    )
    parser.add_argument(
        "--no-range",
        action="store_true",
        help="behave like the reference on the wire: chunked, no Range, ETag or Content-Length",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=default_workers(),
        metavar="N",
        help="generator processes (default: the number of usable CPUs)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"where generated bodies are kept (default: {default_cache_dir()})",
    )
    parser.add_argument("--no-cache", action="store_true", help="never read or write the cache")
    parser.add_argument("--clear-cache", action="store_true", help="empty the cache before serving")
    parser.add_argument(
        "--prewarm",
        type=export_list,
        default=(),
        metavar="EXPORTS",
        help="generate these exports (comma-separated) into the cache on all cores, while serving",
    )
    parser.add_argument(
        "--tls-cert",
        type=Path,
        default=None,
        metavar="FILE",
        help="serve https:// with this certificate (PEM; with --tls-key)",
    )
    parser.add_argument(
        "--tls-key",
        type=Path,
        default=None,
        metavar="FILE",
        help="the certificate's private key (PEM)",
    )
    parser.add_argument(
        "--exit-with-parent",
        action="store_true",
        help="exit (with every generator process) when the process that started the server exits",
    )
    parser.add_argument(
        "--fhir-clients",
        type=Path,
        default=None,
        metavar="FILE",
        help="require SMART Backend Services tokens on the FHIR routes, for the clients of this "
        "JSON file (client ids and public JWKS: docs/fhir-auth.md)",
    )
    parser.add_argument(
        "--fhir-token-seconds",
        type=_token_seconds,
        default=None,
        metavar="SECONDS",
        help="how long an access token lives, 1 to 300 (default 300), for testing clients' "
        "renewal; with --fhir-clients",
    )
    # The body-size table to check and use instead of the packaged one: for tests, and for trying
    # a regenerated table before it replaces the packaged one. Not for users, so not in --help.
    parser.add_argument("--size-table", type=Path, default=None, help=argparse.SUPPRESS)
    add_fhir_arguments(parser)
    return parser  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The options, checked; exits with status 2 and a one-line error when they are not valid."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.no_cache:
        for flag, given in [
            ("--cache-dir", args.cache_dir is not None), ("--clear-cache", args.clear_cache),
            ("--prewarm", bool(args.prewarm)),
        ]:  # fmt: skip
            if given:
                parser.error(f"argument --no-cache: not allowed with {flag}")
    if args.fhir_token_seconds is not None and args.fhir_clients is None:
        parser.error("--fhir-token-seconds goes with --fhir-clients")
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    for flag, path in (("--tls-cert", args.tls_cert), ("--tls-key", args.tls_key)):
        if path is not None and not path.is_file():
            parser.error(f"argument {flag}: no such file: {path}")
    return args
