"""`uv run cli EXPORT_ID`: the only module that touches argv, stdout, stderr and the exit status."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
import traceback
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from export_tally import __version__
from export_tally.arguments import (
    build_parser,
    checkpoint_root,
    default_checkpoint_dir,
    embedded_allowed,
    extra_headers,
    in_process_rows,
    server_url,
    tls_verify,
)
from export_tally.errors import ServerUnreachableError, TallyError, UsageError
from export_tally.exitcodes import ExitCode, exit_code_for

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterator, Sequence
    from types import FrameType

    import httpx

    from export_tally.core.aggregation import Aggregator
    from export_tally.figures import Terminal
    from export_tally.progress import OutageNotice
    from export_tally.report.facts import RunFacts
    from export_tally.scheduling.checkpoint import CheckpointStore
    from export_tally.scheduling.executors import Backend
    from export_tally.scheduling.run import ExportResult
    from export_tally.transport.client import ClientOptions
    from export_tally.transport.export_api import ExportApi
    from export_tally.transport.shared_terms import RemoteFile

# The modules a run needs are imported when it needs them (see _run and _connect), not here:
# `--version`, a usage error or `--list` start in a fraction of the time, and the bundled server
# boots while the tool imports its network layer.


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that cleanup runs as for Ctrl-C."""


@dataclass
class _Kept:
    """Where this run keeps finished work, for what a failed run says about it."""

    store: CheckpointStore | None = None
    downloads: int = 0  # the export's downloads
    default_place: bool = False  # in the user cache directory, removed after a success


def _say(stderr: TextIO, message: str) -> None:
    print(f"cli: {message}", file=stderr)


def build_report(facts: RunFacts, data: dict[str, Any]) -> str:
    """The report page; altair and vl-convert load only here, once the run has succeeded."""
    from export_tally.report.page import build_page

    return build_page(facts, data)


def _open_checkpoints(
    args: argparse.Namespace, identity: str, aggregation: Aggregator[Any], stderr: TextIO
) -> CheckpointStore | None:
    """The store for finished work: --checkpoint-dir, else the user cache directory.

    An unusable --checkpoint-dir is a usage error; an unusable cache directory only a warning.
    """
    if args.no_checkpoint:
        return None
    from export_tally.scheduling.checkpoint import CheckpointStore

    def warn(message: str) -> None:
        _say(stderr, f"warning: {message}")

    if args.checkpoint_dir is not None:
        return CheckpointStore(args.checkpoint_dir, identity, aggregation, warn)
    directory = default_checkpoint_dir(identity, args.export_id)
    try:
        return CheckpointStore(directory, identity, aggregation, warn)
    except UsageError as exc:
        warn(f"{exc}; finished downloads are not kept (choose a place with --checkpoint-dir)")
        return None


def _connect(
    args: argparse.Namespace, stderr: TextIO, stack: ExitStack
) -> tuple[ClientOptions, str]:
    """The client options for the server to use, starting the bundled one when that is allowed.

    Returns the options and the server's identity for checkpoint keys (the embedded server's
    port changes every run, so its identity is its version instead).
    """
    url, explicit = server_url(args)
    headers = extra_headers(args)
    verify = tls_verify(args)
    if args.insecure:
        _say(stderr, "warning: --insecure: the server's TLS certificate is not verified")
    embedded = None
    if not explicit:
        from export_tally.embedded import EmbeddedServer, is_listening

        if not is_listening(url):
            if args.scheduler:
                raise ServerUnreachableError(
                    f"nothing answers at {url}, and --scheduler cannot use the bundled server "
                    "(remote workers could not reach it): pass --server with an address they can "
                    "reach"
                )
            if embedded_allowed(args):
                embedded = EmbeddedServer()
                stack.callback(embedded.stop)
    # While the bundled server starts (if it does), the tool imports what the run needs.
    if not args.list:
        from export_tally.scheduling import in_process, local_pool, run  # noqa: F401 (ahead)
    from export_tally.transport.client import ClientOptions
    from export_tally.transport.retry import RetryPolicy

    embedded_identity: str | None = None
    if embedded is not None:
        embedded_url = embedded.wait_for_url()
        _say(stderr, f"nothing answers at {url}; started the bundled mock server at "
             f"{embedded_url} (mock data, not a real export)")  # fmt: skip
        url, embedded_identity = embedded_url, f"embedded-export-server/{__version__}"
    options = ClientOptions(
        url,
        args.timeout,
        RetryPolicy(retries=args.retries, max_outage=args.max_outage),
        headers=headers,
        verify=verify,
        redirects_anywhere=args.follow_redirects_anywhere,
    )
    return options, embedded_identity or options.redacted_url


def _backend(
    args: argparse.Namespace, rows: int, client: httpx.Client, in_process_below: int
) -> Backend:
    """Dask when asked for; the tool's own process for fewer rows than `in_process_below`
    (no worker processes to start: for small exports that costs more than the counting); else a
    pool of `args.jobs` worker processes."""
    if args.scheduler:
        from export_tally.scheduling.dask_backend import DaskBackend

        return DaskBackend(args.scheduler)
    if rows < in_process_below:
        from export_tally.scheduling.in_process import InProcessBackend

        return InProcessBackend(client)
    from export_tally.scheduling.local_pool import LocalBackend

    return LocalBackend(args.jobs)


def _terminal(stdout: TextIO, to_file: bool) -> Terminal:
    """The width a table may take, and whether it may be styled (a terminal, no NO_COLOR)."""
    from export_tally.figures import Terminal

    if to_file or not stdout.isatty():
        columns = os.environ.get("COLUMNS", "")
        return Terminal(int(columns) if columns.isdigit() and int(columns) > 0 else 80)
    return Terminal(shutil.get_terminal_size().columns, styled=not os.environ.get("NO_COLOR"))


def _aggregator(args: argparse.Namespace) -> Aggregator[Any]:
    if args.stats:
        from export_tally.core.stats.parser import StatsAggregator

        return StatsAggregator(args.on_bad_row)
    from export_tally.core.counts.parser import CountAggregator

    return CountAggregator(args.on_bad_row)


def _run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO, kept: _Kept) -> ExitCode:
    started = time.monotonic()
    if args.version:
        print(f"cli (export-tally) {__version__}", file=stdout)
        return ExitCode.OK
    if not args.list and not args.export_id:
        raise UsageError("an export id is required (or --list to see them)")
    if args.output is not None:
        from export_tally.output import check_writable

        check_writable(args.output)
    if args.report is not None:
        from export_tally.report.preflight import check_report_target, ensure_available

        check_report_target(args.report, args.output)
        ensure_available()
    in_process_below = in_process_rows()  # read now: a bad value fails before connecting
    aggregation = _aggregator(args)

    with ExitStack() as stack:
        options, identity = _connect(args, stderr, stack)
        from export_tally.progress import OutageNotice
        from export_tally.transport.client import make_client
        from export_tally.transport.export_api import ExportApi

        client = stack.enter_context(make_client(options))
        notice = OutageNotice(stderr, "cli: ", args.max_outage)
        api = ExportApi(client, options, notice)
        if args.list:
            for export_id in api.list_exports():
                print(export_id, file=stdout)
            return ExitCode.OK
        downloads, result = _count(
            args, stderr, api, identity, aggregation, notice, kept, in_process_below
        )
    from export_tally.summary import run_summary

    for line in run_summary(result, kept.store):
        _say(stderr, line)

    from export_tally.formats import render_result
    from export_tally.output import write_atomically

    data = aggregation.report(result.tally, args.precision)
    terminal = _terminal(stdout, args.output is not None)
    text = render_result(data, args.format, stats=args.stats, precision=args.precision, terminal=terminal)  # fmt: skip
    if args.report is not None:
        from datetime import UTC, datetime

        from export_tally.report.facts import collect_facts

        facts = collect_facts(
            args, build_parser().parse_args([]), downloads, result, server=identity,
            version=__version__, made=datetime.now(UTC), seconds=time.monotonic() - started,
        )  # fmt: skip
        write_atomically(args.report, build_report(facts, data))
        _say(stderr, f"wrote the report to {args.report}")
    if args.output is not None:
        write_atomically(args.output, text)
    else:
        stdout.write(text)
        stdout.flush()
    if kept.store is not None and kept.default_place:
        kept.store.discard(up_to=checkpoint_root())  # the answer is out: nothing piles up
    return ExitCode.OK


def _count(
    args: argparse.Namespace,
    stderr: TextIO,
    api: ExportApi,
    identity: str,
    aggregation: Aggregator[Any],
    notice: OutageNotice,
    kept: _Kept,
    in_process_below: int,
) -> tuple[list[RemoteFile], ExportResult]:
    """Discover the export and count it: the run itself, between connecting and reporting."""
    from export_tally.progress import Progress
    from export_tally.scheduling.run import SplitPolicy, count_downloads
    from export_tally.scheduling.tasks import RunOptions
    from export_tally.transport.export_api import ExportApiSource
    from export_tally.transport.fetch_range import probe_splittable

    client, options = api.client, api.options
    downloads = ExportApiSource(api, args.export_id).files()
    checkpoints = _open_checkpoints(args, identity, aggregation, stderr)
    kept.store, kept.downloads = checkpoints, len(downloads)
    kept.default_place = args.checkpoint_dir is None
    split = SplitPolicy(lambda file: probe_splittable(client, options, file), args.min_part_bytes)
    show = args.progress if args.progress is not None else stderr.isatty()
    total = sum(d.rows for d in downloads)
    with Progress(total, args.export_id, stderr, show) as progress:
        notice.bar = progress
        result = count_downloads(
            downloads, RunOptions(options, aggregation), _backend(args, total, client, in_process_below),
            progress.advance, checkpoints, split, notice,
        )  # fmt: skip
    return downloads, result


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
    # Until the arguments parse, a trace for a usage error needs --debug spelt out; after, it is
    # what the parser says (which takes any unambiguous prefix: --deb).
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    kept = _Kept()
    try:
        with _sigterm_raises():
            args = build_parser().parse_args(argv)
            debug = args.debug
            return _run(args, stdout, stderr, kept)
    except Terminated:
        _say(stderr, "terminated")
        status = ExitCode.TERMINATED
    except KeyboardInterrupt:
        _say(stderr, "interrupted")
        status = ExitCode.INTERRUPTED
    except TallyError as exc:
        if debug:
            traceback.print_exc(file=stderr)
        _say(stderr, f"error: {exc}")
        status = exit_code_for(exc)
    except Exception as exc:
        if debug:
            traceback.print_exc(file=stderr)
        _say(
            stderr,
            f"unexpected error: {type(exc).__name__}: {exc} (run with --debug for the trace)",
        )
        status = ExitCode.UNEXPECTED
    if status != ExitCode.USAGE:  # the same command would fail the same way
        from export_tally.summary import kept_summary

        line = kept_summary(kept.store, kept.downloads)
        if line is not None:
            _say(stderr, line)
    return status


def main_entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
