"""The command line's grammar: the flags, one small function per option group, and their checks.

Every mistake becomes a UsageError with one line that says what is wrong (exit status 2). What the
flags turn into (with the environment) is `settings.parse`'s business, not this module's.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import NoReturn

from export_tally.core.csv.split import DEFAULT_MIN_PART_BYTES
from export_tally.errors import UsageError
from export_tally.render.formats import FORMATS

DEFAULT_SERVER = "http://127.0.0.1:8000"
# RetryPolicy's default, written here so that parsing arguments does not import the network layer
# (httpx); a test pins that the two agree.
DEFAULT_MAX_OUTAGE = 120.0
DEFAULT_JOBS = min(os.cpu_count() or 1, 8)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see cli --help)")


def _whole(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"{text} must be at least {least}")
    return value


def positive_int(text: str) -> int:
    return _whole(text, 1)


def non_negative_int(text: str) -> int:
    return _whole(text, 0)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} must be more than 0 seconds")
    return value


def build_parser(checkpoint_root: Path) -> argparse.ArgumentParser:
    """The parser; `checkpoint_root` (where finished work is kept by default) is only shown in
    the help. Each option's default is the parser's (`parser.get_default(dest)`)."""
    parser = _Parser(
        prog="cli",
        description="Count an export's events per patient and event type, exactly, as JSON.",
    )
    _add_run_options(parser)
    _add_statistics(parser)
    _add_failures(parser, checkpoint_root)
    _add_real_servers(parser)
    _add_smart_auth(parser)
    _add_cluster(parser)
    _add_fhir(parser)
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    return parser


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    """What to count, from where, and where the answer goes."""
    add = parser.add_argument
    add(
        "export_id",
        nargs="?",
        help="the export to count (see --list); with --fhir, the Group to export (optional)",
    )
    add(
        "--server",
        metavar="URL",
        help=f"export server (default: $EXPORT_SERVER_URL, else {DEFAULT_SERVER})",
    )
    add(
        "-o",
        "--output",
        metavar="FILE",
        type=Path,
        help="write the output here (atomically) instead of stdout",
    )
    add(
        "--format",
        choices=FORMATS,
        default="json",
        help="json (the default: the contract), table (for people) or csv (for spreadsheets)",
    )
    add(
        "--report",
        type=Path,
        metavar="FILE.html",
        help="also write a self-contained HTML report with charts (the `report` extra)",
    )
    add(
        "-j",
        "--jobs",
        type=positive_int,
        default=DEFAULT_JOBS,
        metavar="N",
        help="downloads processed at once = connections to the server (default: CPU count, at most 8)",
    )
    add(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="rows done, rate and ETA on stderr (default: on when stderr is a terminal)",
    )
    add("--list", action="store_true", help="print the server's export ids and exit")
    add(
        "--no-embedded",
        action="store_true",
        help="never start the bundled mock server (also: EXPORT_TALLY_NO_EMBEDDED=1)",
    )


def _add_statistics(parser: argparse.ArgumentParser) -> None:
    stats = parser.add_argument_group("statistics")
    stats.add_argument(
        "--stats",
        action="store_true",
        help="count, mean, min, max, anomalies and latency per patient and event type",
    )
    stats.add_argument(
        "--precision",
        type=non_negative_int,
        default=1,
        metavar="N",
        help="decimal places of mean and latency, rounded half to even (default: 1)",
    )


def _add_failures(parser: argparse.ArgumentParser, checkpoint_root: Path) -> None:
    """Retries, outages, timeouts, bad rows, and the finished work kept for a rerun."""
    failures = parser.add_argument_group("failures and bad data")
    failures.add_argument(
        "--retries",
        type=non_negative_int,
        default=5,
        metavar="N",
        help="consecutive failures without progress before giving up (default: 5); "
        "while the server cannot be reached, --max-outage applies instead",
    )
    failures.add_argument(
        "--max-outage",
        type=_seconds,
        default=DEFAULT_MAX_OUTAGE,
        metavar="SECONDS",
        help="while the server cannot be reached (refused, reset, DNS, 502/503/504, timeouts), "
        f"keep trying this long before giving up (default: {DEFAULT_MAX_OUTAGE:g})",
    )
    failures.add_argument(
        "--timeout",
        type=_seconds,
        default=30.0,
        metavar="SECONDS",
        help="connect and read timeout; a stream silent this long is retried (default: 30)",
    )
    failures.add_argument(
        "--on-bad-row",
        choices=["fail", "skip"],
        default="fail",
        help="a malformed row fails the run (default) or is skipped and reported",
    )
    kept = failures.add_mutually_exclusive_group()
    kept.add_argument(
        "--checkpoint-dir",
        type=Path,
        metavar="DIR",
        help="save each finished download's result here, and keep it after a success; a rerun "
        "skips the downloads saved (default: a directory per server and export under "
        f"{checkpoint_root}, emptied by a run that succeeds)",
    )
    kept.add_argument(
        "--no-checkpoint",
        action="store_true",
        help="do not keep finished downloads for a rerun",
    )


def _add_real_servers(parser: argparse.ArgumentParser) -> None:
    """Credentials, headers and TLS for servers other than the mock."""
    real = parser.add_argument_group("real servers")
    real.add_argument(
        "--token",
        metavar="TOKEN",
        help="send Authorization: Bearer TOKEN (also: $EXPORT_SERVER_TOKEN, kept out of shell history)",
    )
    real.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="send this header with every request (repeatable)",
    )
    real.add_argument(
        "--cacert", type=Path, metavar="FILE", help="trust this CA bundle for https:// servers"
    )
    real.add_argument(
        "--insecure", action="store_true", help="do not verify the server's TLS certificate (warns)"
    )
    real.add_argument(
        "--follow-redirects-anywhere",
        action="store_true",
        help="follow redirects to other hosts too (credentials are never sent there)",
    )


def _add_smart_auth(parser: argparse.ArgumentParser) -> None:
    """SMART Backend Services: a FHIR server's access tokens, got with a signed assertion. The
    key file is read (and checked) by `settings.parse`, so that the flags alone import nothing."""
    smart = parser.add_argument_group("FHIR authorization (SMART Backend Services)")
    smart.add_argument(
        "--client-id",
        metavar="ID",
        help="the client id the FHIR server registered for you; needs --private-key",
    )
    smart.add_argument(
        "--private-key",
        type=Path,
        metavar="FILE",
        help="the client's private key: a JWK set or a PEM file, RSA (RS384) or P-384 EC (ES384); "
        "it signs the requests for access tokens and is never shown",
    )
    smart.add_argument(
        "--scope",
        metavar="SCOPE",
        help="the scopes to ask for, space-separated (default: system/*.read, which SMART v1 "
        "and v2 servers accept; system/*.rs for a server that offers v2 scopes only)",
    )


def _add_cluster(parser: argparse.ArgumentParser) -> None:
    cluster = parser.add_argument_group("beyond one machine")
    cluster.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the work on this Dask cluster (e.g. tcp://10.0.0.5:8786); needs --server",
    )
    cluster.add_argument(
        "--min-part-bytes",
        type=positive_int,
        default=DEFAULT_MIN_PART_BYTES,
        metavar="N",
        help="when workers outnumber downloads, split downloads into parts of at "
        f"least N bytes (default: {DEFAULT_MIN_PART_BYTES})",
    )


def _type_names(text: str) -> list[str]:
    """`--type Observation,Patient`: the names, comma-separated (the flag may be repeated)."""
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"{text!r}: an empty resource type name")
    return names


def _add_fhir(parser: argparse.ArgumentParser) -> None:
    """FHIR Bulk Data: what to export from a FHIR server, and what becomes of its job."""
    fhir = parser.add_argument_group(
        "FHIR Bulk Data", "count a FHIR server's $export: cli --fhir BASE_URL [GROUP_ID]"
    )
    fhir.add_argument(
        "--fhir",
        metavar="BASE_URL",
        help="export from this FHIR server (e.g. https://host/fhir): Group/GROUP_ID/$export "
        "with a group id, else Patient/$export",
    )
    fhir.add_argument(
        "--type",
        dest="types",
        action="append",
        type=_type_names,
        metavar="TYPE[,TYPE]",
        help="the resource types to export and count (repeatable; default: Observation)",
    )
    fhir.add_argument(
        "--since",
        metavar="INSTANT",
        help="only resources changed after this FHIR instant (e.g. 2024-01-31T00:00:00Z)",
    )
    fhir.add_argument(
        "--key",
        choices=["code", "text"],
        default="code",
        help="an Observation counts under its first coding's code (default: code) or under its "
        "code.text, else that coding's display (text)",
    )
    fhir.add_argument(
        "--keep-job",
        action="store_true",
        help="leave the export job on the server after a successful run (default: DELETE it)",
    )
    fhir.add_argument(
        "--resume-job",
        metavar="STATUS_URL",
        help="poll this export job (started elsewhere) instead of starting a new one",
    )
