"""`uv run cli EXPORT_ID`: the only module that touches argv, stdout, stderr and the exit status."""

from __future__ import annotations

import signal
import sys
import traceback
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, TextIO

from export_tally import __version__
from export_tally.arguments import (
    build_parser,
    embedded_allowed,
    extra_headers,
    in_process_rows,
    server_url,
    tls_verify,
)
from export_tally.core.errors import ServerUnreachableError, TallyError, UsageError
from export_tally.exitcodes import ExitCode, exit_code_for

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterator, Sequence
    from types import FrameType

    import httpx

    from export_tally.core.aggregation import Aggregation
    from export_tally.scheduling.executors import Backend
    from export_tally.scheduling.run import ExportResult
    from export_tally.transport.api import ExportApi
    from export_tally.transport.client import ClientOptions

# The modules a run needs are imported when it needs them (see _run and _connect), not here:
# `--version`, a usage error or `--list` start in a fraction of the time, and the bundled server
# boots while the tool imports its network layer.


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that cleanup runs as for Ctrl-C."""


def _say(stderr: TextIO, message: str) -> None:
    print(f"cli: {message}", file=stderr)


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
        from export_tally.scheduling import executors, run  # noqa: F401 (imported ahead)
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
        RetryPolicy(retries=args.retries),
        headers=headers,
        verify=verify,
        redirects_anywhere=args.follow_redirects_anywhere,
    )
    return options, embedded_identity or options.shown_url


def _backend(args: argparse.Namespace, rows: int, client: httpx.Client) -> Backend:
    """Dask when asked for; the tool's own process for fewer rows than `args.in_process_rows`
    (no worker processes to start: for small exports that costs more than the counting); else a
    pool of `args.jobs` worker processes."""
    from export_tally.scheduling import executors

    if args.scheduler:
        return executors.DaskBackend(args.scheduler)
    if rows < args.in_process_rows:
        return executors.InProcessBackend(client)
    return executors.LocalBackend(args.jobs)


def _run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> ExitCode:
    if args.version:
        print(f"cli (export-tally) {__version__}", file=stdout)
        return ExitCode.OK
    if not args.list and not args.export_id:
        raise UsageError("an export id is required (or --list to see them)")
    if args.output is not None:
        from export_tally.output import check_writable

        check_writable(args.output)
    args.in_process_rows = in_process_rows()

    with ExitStack() as stack:
        options, identity = _connect(args, stderr, stack)
        from export_tally.transport.api import ExportApi
        from export_tally.transport.client import make_client

        client = stack.enter_context(make_client(options))
        api = ExportApi(client, options)
        if args.list:
            for export_id in api.list_exports():
                print(export_id, file=stdout)
            return ExitCode.OK
        result, aggregation = _count(args, stderr, api, identity)
    _report(result, args, stderr)

    from export_tally.output import render, write_atomically

    text = render(aggregation.report(result.tally, args.precision))
    if args.output is not None:
        write_atomically(args.output, text)
    else:
        stdout.write(text)
        stdout.flush()
    return ExitCode.OK


def _count(
    args: argparse.Namespace, stderr: TextIO, api: ExportApi, identity: str
) -> tuple[ExportResult, Aggregation]:
    """Discover the export and count it: the run itself, between connecting and reporting."""
    from export_tally.core.aggregation import Aggregation
    from export_tally.progress import Progress
    from export_tally.scheduling.run import SplitPolicy, count_downloads, discover
    from export_tally.scheduling.tasks import RunOptions
    from export_tally.transport.fetch_part import probe_splittable

    client, options = api.client, api.options
    aggregation = Aggregation(on_bad_row=args.on_bad_row, stats=args.stats)
    downloads = discover(api, args.export_id)
    checkpoints = None
    if args.checkpoint_dir is not None:
        from export_tally.scheduling.checkpoint import CheckpointStore

        checkpoints = CheckpointStore(args.checkpoint_dir, identity, aggregation)
    split = SplitPolicy(lambda info: probe_splittable(client, options, info), args.min_part_bytes)
    show = args.progress if args.progress is not None else stderr.isatty()
    total = sum(d.rows for d in downloads)
    with Progress(total, args.export_id, stderr, show) as progress:
        result = count_downloads(
            downloads, RunOptions(options, aggregation), _backend(args, total, client),
            progress.advance, checkpoints, split,
        )  # fmt: skip
    return result, aggregation


def _report(result: ExportResult, args: argparse.Namespace, stderr: TextIO) -> None:
    """What the user should know besides the answer: recoveries, checkpoints, skipped rows."""
    downloads = result.downloads
    restored = sum(d.restored for d in downloads)
    if restored:
        _say(stderr, f"{restored} of {len(downloads)} download(s) taken from checkpoints in "
             f"{args.checkpoint_dir}")  # fmt: skip
    split = [d for d in downloads if d.parts > 1]
    if split:
        _say(stderr, f"counted {len(split)} download(s) in {sum(d.parts for d in split)} "
             "byte-range parts")  # fmt: skip
    retried = sum(d.attempts - d.parts for d in downloads if not d.restored)
    if retried:
        resumes = sum(d.resumes for d in downloads)
        restarts = sum(d.restarts for d in downloads)
        _say(stderr, f"recovered from {retried} failed attempt(s): {resumes} resumed with Range, "
             f"{restarts} restarted from the beginning; the counts are exact")  # fmt: skip
    for download in downloads:
        parsed = download.result
        if parsed.skipped:
            where = ", first at line(s) " + ", ".join(map(str, parsed.skipped_lines))
            _say(stderr, f"download {download.download_id}: skipped {parsed.skipped} bad row(s)"
                 + (where if parsed.skipped_lines else ""))  # fmt: skip


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
            return _run(build_parser().parse_args(argv), stdout, stderr)
    except Terminated:
        _say(stderr, "terminated")
        return ExitCode.TERMINATED
    except KeyboardInterrupt:
        _say(stderr, "interrupted")
        return ExitCode.INTERRUPTED
    except TallyError as exc:
        if debug:
            traceback.print_exc(file=stderr)
        _say(stderr, f"error: {exc}")
        return exit_code_for(exc)
    except Exception as exc:
        if debug:
            traceback.print_exc(file=stderr)
        _say(
            stderr,
            f"unexpected error: {type(exc).__name__}: {exc} (run with --debug for the trace)",
        )
        return ExitCode.UNEXPECTED


def main_entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
