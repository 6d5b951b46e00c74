"""`uv run cli EXPORT_ID`: main is parse (argv and the environment into Settings), then the run
with those settings and the streams; the only module that touches stdout, stderr and the exit
status."""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from export_tally import __version__
from export_tally.cli.connect import connect
from export_tally.cli.exitcodes import ExitCode, exit_code_for
from export_tally.cli.settings import Settings, debug_asked, parse
from export_tally.errors import TallyError, UsageError
from export_tally.render.terminal_text import for_terminal

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence
    from pathlib import Path
    from types import FrameType

    import httpx

    from export_tally.cli.progress import OutageNotice
    from export_tally.core.aggregation import Aggregator
    from export_tally.render.report.facts import RunFacts
    from export_tally.scheduling.checkpoint import CheckpointStore
    from export_tally.scheduling.executors import Backend
    from export_tally.scheduling.run import ExportResult
    from export_tally.transport.export_api import ExportApi
    from export_tally.transport.shared_terms import RemoteFile, Source

# The modules a run needs are imported when it needs them (see run and connect.connect), not here:
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


@dataclass(frozen=True)
class _Connection:
    """The server a run talks to: its API, its identity for checkpoint keys, and the notice
    that tells the user about outages."""

    api: ExportApi
    identity: str
    notice: OutageNotice


def _say(stderr: TextIO, message: str) -> None:
    """One line on stderr; what a server sent in it is shown escaped, never acts on the terminal."""
    print(f"cli: {for_terminal(message)}", file=stderr)


def _trace(stderr: TextIO) -> None:
    """The current exception's trace (--debug), server text in it shown escaped as in `_say`."""
    lines = traceback.format_exc().splitlines()
    print("\n".join(map(for_terminal, lines)), file=stderr)


def build_report(facts: RunFacts, data: dict[str, Any]) -> str:
    """The report page; altair loads only here, once the run has succeeded (and the renderer,
    vl-convert, only in the child process that draws the charts)."""
    from export_tally.render.report.page import build_page

    return build_page(facts, data)


def _write_report(path: Path, facts: RunFacts, data: dict[str, Any]) -> None:
    """Build and write the report; ReportError (exit 5) when it cannot be, never an abort."""
    from export_tally.errors import ReportError
    from export_tally.render.files import write_atomically

    page = build_report(facts, data)
    try:
        write_atomically(path, page)
    except OSError as exc:
        raise ReportError(f"cannot write the report to {path}: {exc.strerror or exc}") from None


def _open_checkpoints(
    settings: Settings, identity: str, aggregation: Aggregator[Any], stderr: TextIO
) -> CheckpointStore | None:
    """The store for finished work: --checkpoint-dir, else the user cache directory.

    An unusable --checkpoint-dir is a usage error; an unusable cache directory only a warning.
    """
    if not settings.keep_checkpoints:
        return None
    from export_tally.scheduling.checkpoint import CheckpointStore

    def warn(message: str) -> None:
        _say(stderr, f"warning: {message}")

    directory = settings.checkpoint_place(identity)
    if settings.checkpoint_dir is not None:
        return CheckpointStore(directory, identity, aggregation, warn)
    try:
        return CheckpointStore(directory, identity, aggregation, warn)
    except UsageError as exc:
        warn(f"{exc}; finished downloads are not kept (choose a place with --checkpoint-dir)")
        return None


def _import_ahead(settings: Settings) -> Callable[[], None]:
    """While the bundled server starts (if it does), the tool imports what the run needs."""

    def load() -> None:
        if not settings.list_exports:
            from export_tally.scheduling import in_process, local_pool, run  # noqa: F401 (ahead)

    return load


def _backend(settings: Settings, rows: int, client: httpx.Client) -> Backend:
    """Dask when asked for; the tool's own process for fewer rows than the in-process threshold
    (no worker processes to start: for small exports that costs more than the counting); else a
    pool of `settings.jobs` worker processes."""
    if settings.scheduler:
        from export_tally.scheduling.dask_backend import DaskBackend

        return DaskBackend(settings.scheduler)
    if rows < settings.in_process_rows:
        from export_tally.scheduling.in_process import InProcessBackend

        return InProcessBackend(client)
    from export_tally.scheduling.local_pool import LocalBackend

    return LocalBackend(settings.jobs)


def _aggregator(settings: Settings) -> Aggregator[Any]:
    if settings.stats:
        from export_tally.core.stats.parser import StatsAggregator

        key = settings.fhir.key if settings.fhir is not None else "code"
        return StatsAggregator(settings.on_bad_row, key)
    from export_tally.core.counts.parser import CountAggregator

    if settings.fhir is not None:
        types = frozenset(settings.fhir.request.types)
        return CountAggregator(settings.on_bad_row, settings.fhir.key, types)
    return CountAggregator(settings.on_bad_row)


def run(settings: Settings, stdout: TextIO, stderr: TextIO, kept: _Kept) -> ExitCode:
    """One run of the tool with these settings; the answer to `stdout` (or the output file),
    everything else to `stderr`; `kept` learns where finished work is kept as soon as it is."""
    started = time.monotonic()
    if settings.version:
        print(f"cli (export-tally) {__version__}", file=stdout)
        return ExitCode.OK
    aggregation = _aggregator(settings)

    with ExitStack() as stack:
        options, identity = connect(
            settings, lambda line: _say(stderr, line), stack, _import_ahead(settings)
        )
        from export_tally.cli.progress import OutageNotice
        from export_tally.transport.client import make_client
        from export_tally.transport.export_api import ExportApi

        client = stack.enter_context(make_client(options))
        notice = OutageNotice(stderr, "cli: ", settings.max_outage)
        api = ExportApi(client, options, notice)
        if settings.list_exports:
            for export_id in api.list_exports():
                print(for_terminal(export_id), file=stdout)
            return ExitCode.OK
        connection = _Connection(api, identity, notice)
        source, downloads, result = _count(settings, connection, aggregation, stderr, kept)
        from export_tally.cli.summary import run_summary

        for line in run_summary(result, kept.store):
            _say(stderr, line)
        from export_tally.cli.answer import write_counts

        data = write_counts(settings, aggregation, result, stdout)
        _release(source, stderr)
    if kept.store is not None and kept.default_place:
        kept.store.discard(up_to=settings.checkpoint_root)  # the answer is out: nothing piles up
    if settings.report is not None:
        from dataclasses import replace
        from datetime import UTC, datetime

        from export_tally.cli.summary import without_patient
        from export_tally.render.report.facts import collect_facts

        choices = replace(settings, export_id=_export_label(settings))
        facts = collect_facts(
            choices, downloads, result, server=identity, version=__version__,
            made=datetime.now(UTC), seconds=time.monotonic() - started,
            notes=(*source.notes, *without_patient(result.tally)),
        )  # fmt: skip
        _write_report(settings.report, facts, data)
        _say(stderr, f"wrote the report to {settings.report}")
    return ExitCode.OK


def _release(source: Source, stderr: TextIO) -> None:
    """Let the source release what the server holds (a FHIR job); the answer is out, so a
    failure here is a warning, not the run's failure."""
    try:
        source.succeeded()
    except TallyError as exc:
        _say(stderr, f"warning: {exc}")


def _count(
    settings: Settings,
    connection: _Connection,
    aggregation: Aggregator[Any],
    stderr: TextIO,
    kept: _Kept,
) -> tuple[Source, list[RemoteFile], ExportResult]:
    """Discover the export and count it: the run itself, between connecting and reporting."""
    from export_tally.cli.progress import Progress
    from export_tally.scheduling.run import SplitPolicy, count_downloads
    from export_tally.scheduling.tasks import RunOptions
    from export_tally.transport.fetch_range import probe_splittable
    from export_tally.transport.shared_terms import declared_rows

    client, options = connection.api.client, connection.api.options
    show = settings.progress if settings.progress is not None else stderr.isatty()
    # A FHIR job's status URL is kept with the checkpoints as soon as the server gives it; an
    # export API run opens them once the export is known to exist.
    checkpoints = None
    if settings.fhir is not None:
        checkpoints = _open_checkpoints(settings, connection.identity, aggregation, stderr)
    source = _source(settings, connection, checkpoints, stderr, show)
    downloads = source.files()
    if settings.fhir is None:
        checkpoints = _open_checkpoints(settings, connection.identity, aggregation, stderr)
    kept.store, kept.downloads = checkpoints, len(downloads)
    kept.default_place = settings.checkpoint_dir is None
    split = SplitPolicy(
        lambda file: probe_splittable(client, options, file), settings.min_part_bytes
    )
    total = declared_rows(downloads)
    with Progress(total, _export_label(settings), stderr, show) as progress:
        connection.notice.bar = progress
        result = count_downloads(
            downloads, RunOptions(options, aggregation), _backend(settings, total, client),
            progress.advance, checkpoints, split, connection.notice,
        )  # fmt: skip
    return source, downloads, result


def _export_label(settings: Settings) -> str:
    """How the progress line and the report name what is counted: `demo`, `Group/demo`."""
    if settings.fhir is None:
        return settings.export_id or ""
    from export_tally.transport.fhir_source import describe_request

    return describe_request(settings.fhir.request)


def _source(
    settings: Settings,
    connection: _Connection,
    checkpoints: CheckpointStore | None,
    stderr: TextIO,
    show_progress: bool,
) -> Source:
    """What the run counts: the export API's export, or the FHIR export (`--fhir`), whose job
    is kept with the checkpoints and whose X-Progress is said while the progress shows."""
    if settings.fhir is None:
        from export_tally.transport.export_api import ExportApiSource

        return ExportApiSource(connection.api, settings.export_id or "")
    from export_tally.cli.fhir_job import ProgressLines, StoredJob
    from export_tally.transport.fhir_source import FhirSource

    fhir = settings.fhir

    def say(line: str) -> None:
        _say(stderr, line)

    return FhirSource(
        connection.api.client, connection.api.options, fhir.request,
        memory=StoredJob(checkpoints, fhir.request) if checkpoints is not None else None,
        say=say, on_progress=ProgressLines(say, show_progress), on_outage=connection.notice,
        resume_job=fhir.resume_job, keep_job=fhir.keep_job,
        fail_on_errors=settings.on_bad_row == "fail",
    )  # fmt: skip


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
    argv: Sequence[str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    """Run the tool; returns the exit status (see ExitCode). argv, the streams and the
    environment default to the process's."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    argv = sys.argv[1:] if argv is None else argv
    kept = _Kept()
    try:
        with _sigterm_raises():
            settings = parse(argv, os.environ if environ is None else environ)
            return run(settings, stdout, stderr, kept)
    except Terminated:
        _say(stderr, "terminated")
        status = ExitCode.TERMINATED
    except KeyboardInterrupt:
        _say(stderr, "interrupted")
        status = ExitCode.INTERRUPTED
    except TallyError as exc:
        if debug_asked(argv):
            _trace(stderr)
        _say(stderr, f"error: {exc}")
        status = exit_code_for(exc)
    except Exception as exc:
        if debug_asked(argv):
            _trace(stderr)
        _say(
            stderr,
            f"unexpected error: {type(exc).__name__}: {exc} (run with --debug for the trace)",
        )
        status = ExitCode.UNEXPECTED
    # After a usage error the same command would fail the same way; after a report error the
    # counts are out, and nothing is left to resume.
    if status not in (ExitCode.USAGE, ExitCode.REPORT):
        from export_tally.cli.summary import kept_summary

        line = kept_summary(kept.store, kept.downloads)
        if line is not None:
            _say(stderr, line)
    return status


def main_entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
