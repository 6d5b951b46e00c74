"""A FHIR Bulk Data export as a source: the job started (or resumed), polled, its manifest's
output files as files to fetch, its error and deleted files told, the job deleted at the end.

The protocol's steps are `fhir_bulk` (kick-off, polling, DELETE), `fhir_manifest`,
`fhir_outcomes` (error files) and `fhir_deleted`; this module puts them in the order a run needs
and makes the manifest's files `RemoteFile`s (NDJSON, an absolute URL, the declared `count` as
rows or None), which the run fetches and counts as it does the export API's downloads.

The job's status URL is given to a `JobMemory` as soon as the server gives it (the run keeps it
with the checkpoints), so a run that crashed or was interrupted after the kick-off polls the
same job when run again, instead of starting another export.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from export_tally.core.aggregation import NDJSON
from export_tally.errors import ExportJobGoneError, ProtocolError
from export_tally.transport.fhir_bulk import MAX_POLL_WAIT, delete_job, kick_off, poll_status
from export_tally.transport.fhir_deleted import count_deleted, describe_deleted
from export_tally.transport.fhir_outcomes import clean_text, summarise_error_files
from export_tally.transport.retry import REAL_CLOCK, Clock
from export_tally.transport.shared_terms import RemoteFile, redact_url

if TYPE_CHECKING:
    import httpx

    from export_tally.transport.client import ClientOptions
    from export_tally.transport.fhir_bulk import ExportRequest
    from export_tally.transport.fhir_manifest import Manifest
    from export_tally.transport.fhir_outcomes import ErrorSummary
    from export_tally.transport.retry import OutageCallback

Say = Callable[[str], None]  # one line for the user (the caller escapes server text in it)


class JobMemory(Protocol):
    """Where a run keeps its export job's status URL between runs (with the checkpoints)."""

    def recall(self) -> str | None: ...

    def remember(self, status_url: str) -> None: ...

    def forget(self) -> None: ...


class NoMemory:
    """Nothing kept (--no-checkpoint): every run starts its own job."""

    def recall(self) -> str | None:
        return None

    def remember(self, status_url: str) -> None:
        pass

    def forget(self) -> None:
        pass


def describe_request(request: ExportRequest) -> str:
    """How messages and reports name what is exported: `Group/demo` or `Patient`."""
    return f"Group/{request.group}" if request.group is not None else "Patient"


def remote_files(request: ExportRequest, manifest: Manifest) -> list[RemoteFile]:
    """The manifest's output files (of the types asked for) as files to fetch, in its order.

    A file's id is its URL's last segment when those are unique in the manifest, else its URL;
    its metadata (which names its checkpoints) holds its URL, type and count and the export's
    transaction time, so a file of another job or export is never taken for it.
    """
    names = [urlsplit(f.url).path.rsplit("/", 1)[-1] for f in manifest.files]
    unique = len(set(names)) == len(names) and all(names)
    files = []
    for entry, name in zip(manifest.files, names, strict=True):
        file_id = name if unique else redact_url(entry.url)
        metadata = {"count": entry.count, "transactionTime": manifest.transaction_time,
                    "type": entry.type, "url": entry.url}  # fmt: skip
        files.append(
            RemoteFile(
                export_id=describe_request(request),
                id=file_id,
                label=f"file {file_id}",
                url=entry.url,
                rows=entry.count,
                format=NDJSON,
                metadata=json.dumps(metadata, sort_keys=True),
            )
        )
    return files


class FhirSource:
    """One FHIR Bulk Data export: `files()` starts or resumes the job and waits for it,
    `succeeded()` deletes it (unless `keep_job`).

    `say` hears each line for the user: the job started or resumed, a Retry-After longer than
    the wait it gets, the error files' summary and first texts, the deleted resources, output
    types not asked for. `on_progress` hears each X-Progress (one clean line). With
    `fail_on_errors`, an error file holding an `error` or `fatal` issue fails the run
    (ProtocolError, exit 4) once it is told; else the run goes on with what was exported.
    """

    def __init__(
        self,
        client: httpx.Client,
        options: ClientOptions,
        request: ExportRequest,
        *,
        memory: JobMemory | None = None,
        say: Say = lambda line: None,
        on_progress: Say | None = None,
        on_outage: OutageCallback | None = None,
        resume_job: str | None = None,
        keep_job: bool = False,
        fail_on_errors: bool = True,
        clock: Clock = REAL_CLOCK,
        max_poll_wait: float = MAX_POLL_WAIT,
    ) -> None:
        self.client = client
        self.options = options
        self.request = request
        self.memory: JobMemory = memory or NoMemory()
        self.say = say
        self.on_progress = on_progress
        self.on_outage = on_outage
        self.resume_job = resume_job
        self.keep_job = keep_job
        self.fail_on_errors = fail_on_errors
        self.clock = clock
        self.max_poll_wait = max_poll_wait
        self.status_url: str | None = None
        self.errors: ErrorSummary | None = None
        self.deleted: dict[str, int] = {}
        self._notes: list[str] = []

    @property
    def notes(self) -> tuple[str, ...]:
        """The lines said about the export's content (error and deleted files, types not asked
        for, a Retry-After capped), for the report."""
        return tuple(self._notes)

    def _note(self, line: str) -> None:
        self._notes.append(line)
        self.say(line)

    def files(self) -> list[RemoteFile]:
        """Start (or resume) the export, wait for its manifest, tell its error and deleted
        files; its output files of the types asked for. Raises as `fhir_bulk` does, and
        ProtocolError for error outcomes under `fail_on_errors`."""
        manifest = self._manifest()
        self._tell(manifest)
        return remote_files(self.request, manifest)

    def succeeded(self) -> None:
        """DELETE the job (unless `keep_job`), and forget it: a later run starts afresh."""
        if self.status_url is not None and not self.keep_job:
            where = redact_url(self.status_url)
            if delete_job(self.client, self.options, self.status_url, on_outage=self.on_outage,
                          clock=self.clock):  # fmt: skip
                self.say(f"deleted the export job {where}")
            else:
                self.say(f"the export job {where} was already gone")
        elif self.status_url is not None:
            self.say(f"kept the export job {redact_url(self.status_url)} (--keep-job)")
        self.memory.forget()

    def _start(self) -> str:
        status_url = kick_off(
            self.client, self.options, self.request, on_outage=self.on_outage, clock=self.clock
        )
        self.memory.remember(status_url)
        self.say(f"started the export of {describe_request(self.request)}: "
                 f"polling {redact_url(status_url)}")  # fmt: skip
        return status_url

    def _manifest(self) -> Manifest:
        """Poll the job given, remembered or started now; a remembered job that is gone (the
        server deleted or expired it) is replaced by a new one."""
        if self.resume_job is not None:
            self.status_url = self.resume_job
            self.memory.remember(self.resume_job)
            return self._poll(self.resume_job)
        remembered = self.memory.recall()
        if remembered is not None:
            self.status_url = remembered
            self.say(f"polling the export job a previous run started: {redact_url(remembered)}")
            try:
                return self._poll(remembered)
            except ExportJobGoneError as exc:
                self.say(f"{exc}; starting a new export")
                self.memory.forget()
        self.status_url = self._start()
        return self._poll(self.status_url)

    def _poll(self, status_url: str) -> Manifest:
        return poll_status(
            self.client, self.options, status_url, self.request.types,
            on_progress=self.on_progress, on_long_wait=self._long_wait,
            on_outage=self.on_outage, clock=self.clock, max_wait=self.max_poll_wait,
        )  # fmt: skip

    def _long_wait(self, asked: float, waited: float) -> None:
        self._note(f"the server asks to be polled again in {asked:g} s; polling every "
                 f"{waited:g} s instead (--max-outage still bounds an outage)")  # fmt: skip

    def _tell(self, manifest: Manifest) -> None:
        """Summarise the error files, count the deleted ones, name the types not asked for."""
        if manifest.unrequested:
            kinds = sorted({clean_text(entry.type, 64) for entry in manifest.unrequested})
            self._note(f"the manifest lists files of types not asked for, not counted: "
                     f"{', '.join(kinds)}")  # fmt: skip
        if manifest.errors:
            summary = summarise_error_files(
                self.client, self.options, [e.url for e in manifest.errors],
                on_outage=self.on_outage, clock=self.clock,
            )  # fmt: skip
            self.errors = summary
            self._note(f"the export's error files: {summary.describe()}")
            for text in summary.first_texts:
                self._note(f"  {text}")
            if summary.fails_run and self.fail_on_errors:
                raise ProtocolError(
                    "the server reported errors in the export (above); "
                    "--on-bad-row skip counts what it did export"
                )
        if manifest.deleted:
            counts = count_deleted(
                self.client, self.options, [e.url for e in manifest.deleted],
                on_outage=self.on_outage, clock=self.clock,
            )  # fmt: skip
            self.deleted = dict(counts)
            if counts:
                self._note(describe_deleted(counts))
