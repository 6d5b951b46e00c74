"""Exit statuses, and the one function that maps an error to its status."""

from __future__ import annotations

from enum import IntEnum

from export_tally.errors import ProtocolError, ReportError, ServerUnreachableError, UsageError


class ExitCode(IntEnum):
    """The tool's exit statuses; documented in the README and pinned by a test."""

    OK = 0
    UNEXPECTED = 1  # a bug: please report it (run with --debug for the trace)
    USAGE = 2  # bad flag or argument, or an export id the server does not have
    UNREACHABLE = 3  # server unreachable, or an HTTP/transport failure the retries did not cure
    PROTOCOL = 4  # the server answered, but not with what the API promises
    REPORT = 5  # the counts were written, but the --report page could not be made
    INTERRUPTED = 130  # Ctrl-C (SIGINT)
    TERMINATED = 143  # SIGTERM


def exit_code_for(error: BaseException) -> ExitCode:
    """The status a run that failed with `error` ends with."""
    if isinstance(error, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    if isinstance(error, UsageError):
        return ExitCode.USAGE
    if isinstance(error, ServerUnreachableError):
        return ExitCode.UNREACHABLE
    if isinstance(error, ProtocolError):
        return ExitCode.PROTOCOL
    if isinstance(error, ReportError):
        return ExitCode.REPORT
    return ExitCode.UNEXPECTED
