"""Which source a run counts: the export API's export, or a FHIR Bulk Data export (`--fhir`).

The one place the command line's choice of protocol becomes a `Source`; everything after it
(checkpoints, scheduling, rendering) is the same for both. A FHIR export's status URL is kept
with the checkpoints (`StoredJob`), so a rerun polls the job the first run started.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx

    from export_tally.cli.settings import Settings
    from export_tally.scheduling.checkpoint import CheckpointStore
    from export_tally.transport.client import ClientOptions
    from export_tally.transport.export_api import ExportApi
    from export_tally.transport.fhir_bulk import ExportRequest
    from export_tally.transport.retry import OutageCallback
    from export_tally.transport.shared_terms import Source


class StoredJob:
    """A FHIR export job's status URL kept in the checkpoint store, under the server and the
    request: a rerun of the same command finds it, another request never does."""

    def __init__(self, store: CheckpointStore, request: ExportRequest) -> None:
        self.store = store
        self.name = "fhir-job " + request.path()

    def recall(self) -> str | None:
        return self.store.recall(self.name)

    def remember(self, status_url: str) -> None:
        self.store.remember(self.name, status_url)

    def forget(self) -> None:
        self.store.forget(self.name)


class ProgressLines:
    """The server's X-Progress, each new text said once (only when progress is shown)."""

    def __init__(self, say: Callable[[str], None], shown: bool) -> None:
        self.say = say
        self.shown = shown
        self.last: str | None = None

    def __call__(self, text: str) -> None:
        if self.shown and text != self.last:
            self.last = text
            self.say(f"export job: {text}")


def export_label(settings: Settings) -> str:
    """How the progress line and the report name what is counted."""
    if settings.fhir is not None:
        from export_tally.transport.fhir_source import describe_request

        return describe_request(settings.fhir.request)
    return settings.export_id or ""


def make_source(
    settings: Settings,
    api: ExportApi,
    checkpoints: CheckpointStore | None,
    say: Callable[[str], None],
    on_outage: OutageCallback,
    show_progress: bool,
) -> Source:
    """The run's source, on the API's client: the export API's export, or the FHIR export."""
    client: httpx.Client = api.client
    options: ClientOptions = api.options
    fhir = settings.fhir
    if fhir is None:
        from export_tally.transport.export_api import ExportApiSource

        return ExportApiSource(api, settings.export_id or "")
    from export_tally.transport.fhir_source import FhirSource

    return FhirSource(
        client, options, fhir.request,
        memory=StoredJob(checkpoints, fhir.request) if checkpoints is not None else None,
        say=say, on_progress=ProgressLines(say, show_progress), on_outage=on_outage,
        resume_job=fhir.resume_job, keep_job=fhir.keep_job,
        fail_on_errors=settings.on_bad_row == "fail",
    )  # fmt: skip
