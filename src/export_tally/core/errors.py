"""The tool's exceptions: one base, and one subclass per way a run can fail.

Which exit status each one maps to is decided in one place, `exitcodes`, not here.
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


class DownloadGoneError(ServerUnreachableError):
    """A download the server listed answers 404: it disappeared during the run."""


class RedirectRefusedError(ServerUnreachableError):
    """The server redirected to another host, which the user did not allow."""


class ExportJobGoneError(ServerUnreachableError):
    """A FHIR export job's status URL answers 404 or 410: deleted, expired, or never there."""
