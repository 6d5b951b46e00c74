"""The tool's exceptions: the whole tree, in one module at the bottom of the layers.

Every layer may raise them (the core included), and this module imports nothing of the package.
Which exit status each one maps to is decided in one place, the edge's exit codes, not here.

    TallyError                    every error the tool raises on purpose (one line for the user)
    ├── UsageError                the user asked for something that cannot be done     exit 2
    ├── ServerUnreachableError    the server could not be reached, or a failure
    │   │                         survived the retries                                  exit 3
    │   ├── DownloadGoneError     a listed download answers 404 (gone during the run)
    │   ├── ExportJobGoneError    a FHIR export job's status URL answers 404 or 410
    │   └── RedirectRefusedError  a redirect to another host the user did not allow
    ├── ProtocolError             a successful answer the API does not promise          exit 4
    │   └── CsvFormatError        a body that is not the promised CSV
    │       └── BadRowError       one data row the tool cannot use (--on-bad-row fail)
    ├── WorkerDiedError           a worker process exited in the middle of a task       exit 1
    ├── ReportError               the counts are out, but the report could not be made  exit 5
    └── SmartAuthError            SMART Backend Services authorization failed (each also
        │                         descends from the error whose exit status it takes)
        ├── SmartKeyError         the --private-key file cannot be used (UsageError)    exit 2
        ├── TokenRefusedError     the token endpoint refused the client (UsageError)    exit 2
        ├── SmartUnreachableError no answer from the SMART configuration or the token
        │                         endpoint (ServerUnreachableError)                     exit 3
        └── SmartDiscoveryError   no usable SMART configuration or token answer
                                  (ProtocolError)                                       exit 4

Where each is raised: UsageError by the edge (flags, targets) and discovery (an unknown export);
ServerUnreachableError and its subclasses by transport (the retrying loop, the client's redirect
guard, discovery); ProtocolError by transport (shapes of answers, ranges, row counts) and
scheduling (parts that do not add up); CsvFormatError and BadRowError by the core's parsers;
WorkerDiedError by scheduling's local pool; ReportError by render's report (its charts failed to
render, their renderer died, or the page could not be written); SmartKeyError by the edge (the
key file is read with the flags), the other SmartAuthErrors by transport's SMART token client.
"""

from __future__ import annotations


class TallyError(Exception):
    """Base of every error the tool raises on purpose; the message is one line for the user."""


class UsageError(TallyError):
    """The user asked for something that cannot be done (bad flag, unknown export)."""


class ServerUnreachableError(TallyError):
    """The server could not be reached, or an HTTP/transport failure survived the retries."""


class ProtocolError(TallyError):
    """The server answered successfully, but with something the API does not promise."""


class CsvFormatError(ProtocolError):
    """A download's body is not the CSV the API promises (bad header, bad row, no newline)."""


class BadRowError(CsvFormatError):
    """A data row the tool cannot use (raised when `on_bad_row` is "fail")."""

    def __init__(self, line_number: int, reason: str) -> None:
        super().__init__(f"bad row at line {line_number}: {reason}")
        self.line_number = line_number
        self.reason = reason

    def __reduce__(self) -> tuple[type[BadRowError], tuple[int, str]]:
        # Raised in worker processes and pickled back: rebuild from the fields, not the message.
        return (self.__class__, (self.line_number, self.reason))


class DownloadGoneError(ServerUnreachableError):
    """A download the server listed answers 404: it disappeared during the run."""


class ExportJobGoneError(ServerUnreachableError):
    """A FHIR export job's status URL answers 404 or 410: deleted, expired, or never there."""


class RedirectRefusedError(ServerUnreachableError):
    """The server redirected to another host, which the user did not allow."""


class WorkerDiedError(TallyError):
    """A worker process exited in the middle of a task (killed, or crashed): a bug or an outside
    kill, not something the server did (exit status 1)."""


class ReportError(TallyError):
    """The report could not be made (its charts failed to render, or their renderer died).

    Raised only after the counts were written; the exit codes map it to a status of its own.
    """


class SmartAuthError(TallyError):
    """SMART Backend Services authorization failed; the message is one line, without secrets
    (no key, assertion or token)."""


class SmartKeyError(SmartAuthError, UsageError):
    """The --private-key file cannot be used (unreadable, not a JWK set or PEM, wrong key type)."""


class SmartDiscoveryError(SmartAuthError, ProtocolError):
    """The server has no usable `.well-known/smart-configuration`, or its token answer is not JSON."""


class TokenRefusedError(SmartAuthError, UsageError):
    """The token endpoint refused the client: the OAuth error and its description say why."""


class SmartUnreachableError(SmartAuthError, ServerUnreachableError):
    """The smart-configuration or the token endpoint could not be reached."""
