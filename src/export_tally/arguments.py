"""The command line's grammar: flags, their checks, and what they turn into.

Every mistake becomes a UsageError with one line that says what is wrong (exit status 2).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

from export_tally.core.csv.split import DEFAULT_MIN_PART_BYTES
from export_tally.errors import UsageError
from export_tally.formats import FORMATS

DEFAULT_SERVER = "http://127.0.0.1:8000"
# RetryPolicy's default, written here so that parsing arguments does not import the network layer
# (httpx); a test pins that the two agree.
DEFAULT_MAX_OUTAGE = 120.0
# An export declaring fewer rows than this is counted in the tool's own process, without starting
# worker processes. Starting a pool of fresh interpreters costs about 0.2 s on a 2-core machine
# (`demo` with a pool of 2 against in-process: 0.43 s against 0.21 s), which counting in two
# processes instead of one wins back after about 2 million rows there (`small`, 7 million rows:
# 2.6 s against 3.2 s); with more cores, sooner. The environment variable overrides it (0: always
# a pool; the tests use it to run both paths).
IN_PROCESS_ROWS = 1_000_000
IN_PROCESS_ROWS_VARIABLE = "EXPORT_TALLY_IN_PROCESS_ROWS"
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# An export id used as a directory name as it is; any other is replaced by its hash.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}")


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


def _positive_int(text: str) -> int:
    return _whole(text, 1)


def _non_negative_int(text: str) -> int:
    return _whole(text, 0)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} must be more than 0 seconds")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cli",
        description="Count an export's events per patient and event type, exactly, as JSON.",
    )
    add = parser.add_argument
    add("export_id", nargs="?", help="the export to count (see --list)")
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
        type=_positive_int,
        default=min(os.cpu_count() or 1, 8),
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

    stats = parser.add_argument_group("statistics")
    stats.add_argument(
        "--stats",
        action="store_true",
        help="count, mean, min, max, anomalies and latency per patient and event type",
    )
    stats.add_argument(
        "--precision",
        type=_non_negative_int,
        default=1,
        metavar="N",
        help="decimal places of mean and latency, rounded half to even (default: 1)",
    )

    failures = parser.add_argument_group("failures and bad data")
    failures.add_argument(
        "--retries",
        type=_non_negative_int,
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
        f"{checkpoint_root()}, emptied by a run that succeeds)",
    )
    kept.add_argument(
        "--no-checkpoint",
        action="store_true",
        help="do not keep finished downloads for a rerun",
    )

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

    cluster = parser.add_argument_group("beyond one machine")
    cluster.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the work on this Dask cluster (e.g. tcp://10.0.0.5:8786); needs --server",
    )
    cluster.add_argument(
        "--min-part-bytes",
        type=_positive_int,
        default=DEFAULT_MIN_PART_BYTES,
        metavar="N",
        help="when workers outnumber downloads, split downloads into parts of at "
        f"least N bytes (default: {DEFAULT_MIN_PART_BYTES})",
    )

    add("--debug", action="store_true", help="show the traceback of an error")
    add("--version", action="store_true", help="print the version and exit")
    return parser  # fmt: skip


def server_url(args: argparse.Namespace) -> tuple[str, bool]:
    """The server to use, and whether the user chose it (an explicit server is never replaced)."""
    url = args.server or os.environ.get("EXPORT_SERVER_URL")
    explicit = url is not None
    url = url or DEFAULT_SERVER
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--server {url!r} is not an http:// or https:// URL")
    return url.rstrip("/"), explicit


def checkpoint_root() -> Path:
    """Where finished work is kept unless --checkpoint-dir says otherwise: the user cache
    directory (platformdirs; on Linux $XDG_CACHE_HOME, else ~/.cache)."""
    from platformdirs import user_cache_path  # only when checkpoints are kept

    return user_cache_path("export-tally") / "checkpoints"


def default_checkpoint_dir(server_identity: str, export_id: str) -> Path:
    """The default checkpoint directory of one export of one server (identity: see cli)."""
    server = hashlib.sha256(server_identity.encode()).hexdigest()[:16]
    export = export_id
    if not _PLAIN_NAME.fullmatch(export_id):
        export = "export-" + hashlib.sha256(export_id.encode()).hexdigest()[:16]
    return checkpoint_root() / server / export


def embedded_allowed(args: argparse.Namespace) -> bool:
    return not args.no_embedded and os.environ.get("EXPORT_TALLY_NO_EMBEDDED", "") in ("", "0")


def in_process_rows() -> int:
    """Below how many declared rows an export is counted in the tool's own process."""
    text = os.environ.get(IN_PROCESS_ROWS_VARIABLE, "")
    if not text:
        return IN_PROCESS_ROWS
    try:
        return _non_negative_int(text)
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"${IN_PROCESS_ROWS_VARIABLE}: {exc}") from None


def extra_headers(args: argparse.Namespace) -> tuple[tuple[str, str], ...]:
    """The user's extra headers, checked; the token becomes an Authorization header."""
    headers = []
    for text in args.header:
        name, sep, value = text.partition(":")
        if not sep or not _HEADER_NAME.match(name.strip()):
            raise UsageError("--header must look like 'Name: value'")
        headers.append((name.strip(), value.strip()))
    token = args.token or os.environ.get("EXPORT_SERVER_TOKEN")
    if token:
        headers.append(("Authorization", f"Bearer {token}"))
    return tuple(headers)


def tls_verify(args: argparse.Namespace) -> bool | str:
    """True (system CAs), False (--insecure) or a CA bundle's path."""
    if args.insecure:
        return False
    if args.cacert is not None:
        if not args.cacert.is_file():
            raise UsageError(f"--cacert {args.cacert}: no such file")
        return str(args.cacert)
    return True
