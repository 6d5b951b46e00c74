"""`uv run cli EXPORT_ID`: the only module that touches argv, stdout, stderr and the exit status."""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import NoReturn, TextIO
from urllib.parse import urlsplit

from export_tally import __version__
from export_tally.api import ExportApi
from export_tally.checkpoint import CheckpointStore
from export_tally.client import ClientOptions, make_client
from export_tally.embedded import EmbeddedServer, is_listening
from export_tally.errors import TallyError, UsageError
from export_tally.exitcodes import ExitCode, exit_code_for
from export_tally.output import check_writable, render, write_atomically
from export_tally.progress import Progress
from export_tally.retry import RetryPolicy
from export_tally.run import ExportResult, RunOptions, count_downloads, discover

DEFAULT_SERVER = "http://127.0.0.1:8000"


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that cleanup runs as for Ctrl-C."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see cli --help)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number, 0 or more")
    return value


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
        help="write the JSON here (atomically) instead of stdout",
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
    add(
        "--retries",
        type=_non_negative_int,
        default=5,
        metavar="N",
        help="consecutive failures without progress before giving up (default: 5)",
    )
    add(
        "--timeout",
        type=_seconds,
        default=30.0,
        metavar="SECONDS",
        help="connect and read timeout; a stream silent this long is retried (default: 30)",
    )
    add(
        "--on-bad-row",
        choices=["fail", "skip"],
        default="fail",
        help="a malformed row fails the run (default) or is skipped and reported",
    )
    add(
        "--checkpoint-dir",
        type=Path,
        metavar="DIR",
        help="save each finished download's result here; a rerun skips the downloads saved",
    )
    add(
        "--token",
        metavar="TOKEN",
        help="send Authorization: Bearer TOKEN (also: $EXPORT_SERVER_TOKEN, kept out of shell history)",
    )
    add(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="send this header with every request (repeatable)",
    )
    add("--cacert", type=Path, metavar="FILE", help="trust this CA bundle for https:// servers")
    add(
        "--insecure", action="store_true", help="do not verify the server's TLS certificate (warns)"
    )
    add(
        "--follow-redirects-anywhere",
        action="store_true",
        help="follow redirects to other hosts too (credentials are never sent there)",
    )
    add("--debug", action="store_true", help="show the traceback of an error")
    add("--version", action="store_true", help="print the version and exit")
    return parser  # fmt: skip


def _server_url(args: argparse.Namespace) -> tuple[str, bool]:
    """The server to use, and whether the user chose it (an explicit server is never replaced)."""
    url = args.server or os.environ.get("EXPORT_SERVER_URL")
    explicit = url is not None
    url = url or DEFAULT_SERVER
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--server {url!r} is not an http:// or https:// URL")
    return url.rstrip("/"), explicit


_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def _headers(args: argparse.Namespace) -> tuple[tuple[str, str], ...]:
    """The user's extra headers, checked; the token becomes an Authorization header."""
    headers = []
    for text in args.header:
        name, sep, value = text.partition(":")
        if not sep or not _HEADER_NAME.match(name.strip()):
            raise UsageError(f"--header must look like 'Name: value', got {name.strip()!r}...")
        headers.append((name.strip(), value.strip()))
    token = args.token or os.environ.get("EXPORT_SERVER_TOKEN")
    if token:
        headers.append(("Authorization", f"Bearer {token}"))
    return tuple(headers)


def _verify(args: argparse.Namespace, stderr: TextIO) -> bool | str:
    if args.insecure:
        print("cli: warning: --insecure: the server's TLS certificate is not verified", file=stderr)
        return False
    if args.cacert is not None:
        if not args.cacert.is_file():
            raise UsageError(f"--cacert {args.cacert}: no such file")
        return str(args.cacert)
    return True


def _embedded_allowed(args: argparse.Namespace) -> bool:
    return not args.no_embedded and os.environ.get("EXPORT_TALLY_NO_EMBEDDED", "") in ("", "0")


def _run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> ExitCode:
    if args.version:
        print(f"cli (export-tally) {__version__}", file=stdout)
        return ExitCode.OK
    if not args.list and not args.export_id:
        raise UsageError("an export id is required (or --list to see them)")
    if args.output is not None:
        check_writable(args.output)
    url, explicit = _server_url(args)
    headers = _headers(args)
    verify = _verify(args, stderr)

    embedded: EmbeddedServer | None = None
    try:
        if not explicit and _embedded_allowed(args) and not is_listening(url):
            embedded = EmbeddedServer()
            print(
                f"cli: nothing answers at {url}; started the bundled mock server at "
                f"{embedded.url} (mock data, not a real export)",
                file=stderr,
            )
            url = embedded.url
        options = ClientOptions(
            url,
            args.timeout,
            RetryPolicy(retries=args.retries),
            headers=headers,
            verify=verify,
            redirects_anywhere=args.follow_redirects_anywhere,
        )
        with make_client(options) as client:
            api = ExportApi(client, options)
            if args.list:
                for export_id in api.list_exports():
                    print(export_id, file=stdout)
                return ExitCode.OK
            downloads = discover(api, args.export_id)

        show = args.progress if args.progress is not None else stderr.isatty()
        total = sum(d.rows for d in downloads)
        run_options = RunOptions(options, args.jobs, args.on_bad_row)
        checkpoints = None
        if args.checkpoint_dir is not None:
            identity = f"embedded-export-server/{__version__}" if embedded else options.shown_url
            checkpoints = CheckpointStore(
                args.checkpoint_dir, identity, f"counts/{args.on_bad_row}"
            )
        with Progress(total, args.export_id, stderr, show) as progress:
            result = count_downloads(downloads, run_options, progress.advance, checkpoints)
        restored = sum(d.restored for d in result.downloads)
        if restored:
            print(f"cli: {restored} of {len(downloads)} download(s) taken from checkpoints in "
                  f"{args.checkpoint_dir}", file=stderr)  # fmt: skip
        _report_recoveries(result, stderr)
        for download in result.downloads:
            parsed = download.result
            if parsed.skipped:
                lines = ", ".join(map(str, parsed.skipped_lines))
                print(f"cli: download {download.download_id}: skipped {parsed.skipped} bad row(s), "
                      f"first at line(s) {lines}", file=stderr)  # fmt: skip
    finally:
        if embedded is not None:
            embedded.stop()

    text = render(result.tally.to_report())
    if args.output is not None:
        write_atomically(args.output, text)
    else:
        stdout.write(text)
        stdout.flush()
    return ExitCode.OK


def _report_recoveries(result: ExportResult, stderr: TextIO) -> None:
    """One line on what the retries cured, so a flaky server does not go unnoticed."""
    retried = sum(d.attempts - 1 for d in result.downloads if not d.restored)
    if retried:
        resumes = sum(d.resumes for d in result.downloads)
        restarts = sum(d.restarts for d in result.downloads)
        print(
            f"cli: recovered from {retried} failed attempt(s): {resumes} resumed with Range, "
            f"{restarts} restarted from the beginning; the counts are exact",
            file=stderr,
        )


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """In the main thread, SIGTERM raises Terminated; elsewhere (tests in threads) nothing changes."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(
    argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    """Run the tool; returns the exit status (see ExitCode). Streams default to sys's."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        with _sigterm_raises():
            args = build_parser().parse_args(argv)
            return _run(args, stdout, stderr)
    except Terminated:
        print("cli: terminated", file=stderr)
        return ExitCode.TERMINATED
    except KeyboardInterrupt:
        print("cli: interrupted", file=stderr)
        return ExitCode.INTERRUPTED
    except TallyError as exc:
        if debug:
            traceback.print_exc(file=stderr)
        print(f"cli: error: {exc}", file=stderr)
        return exit_code_for(exc)
    except Exception as exc:
        if debug:
            traceback.print_exc(file=stderr)
        print(
            f"cli: unexpected error: {type(exc).__name__}: {exc} (run with --debug for the trace)",
            file=stderr,
        )
        return ExitCode.UNEXPECTED


def main_entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
