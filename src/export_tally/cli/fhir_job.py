"""What the command line does for a FHIR export's job: keeps its status URL with the checkpoints
(`StoredJob`), so that a rerun polls the job the first run started, and says its X-Progress.

Nothing here imports the network: the source itself (transport/fhir_source.py) is made by
`cli.command`, which hands it these.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from export_tally.scheduling.checkpoint import CheckpointStore
    from export_tally.transport.fhir_bulk import ExportRequest


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
