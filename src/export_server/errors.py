"""The server's exception hierarchy: one base, so callers can catch everything the server raises."""

from __future__ import annotations


class ExportServerError(Exception):
    """Base of every exception the export server raises on purpose."""


class UnsatisfiableRangeError(ExportServerError):
    """The range is well formed but selects no byte of the body (answer 416)."""


class InvalidUuidError(ExportServerError):
    """A download id in a path is not a UUID (answer 422); the message says why."""


class GenerationError(ExportServerError):
    """A body could not be generated: its generator process failed, died or was shut down."""


class DiskFullError(GenerationError):
    """A body could not be written to the cache: the disk (or the user's quota) is full."""


class SizeTableError(ExportServerError):
    """The body-size table cannot be used: unreadable, malformed, incomplete or stale."""


class ClientsFileError(ExportServerError):
    """The `--fhir-clients` file cannot be used: unreadable, not JSON, or not the documented shape.

    The message is one line naming the file and, when it can, the entry at fault.
    """
