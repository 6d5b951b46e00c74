"""Export jobs, in memory: started by a kick-off, polled, listed in a manifest, deleted.

A job is real work: it plans every Observation file it will serve (`fhir_index.plan_file`),
which reads the export's CSV bodies, generating them into the cache when they are not there yet
(the generator processes do that, as for the CSV API). So a cold `small` takes seconds, a warm
one completes at once. `hold` seconds after its kick-off, at least, a job is reported complete
(for testing clients' polling). A complete job lasts LIFETIME seconds, then it is gone (404).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from export_server.bodies import Bodies
from export_server.dataset import downloads_of
from export_server.errors import GenerationError
from export_server.fhir_convert import Converter
from export_server.fhir_index import ObservationFile, Selection, plan_file
from export_server.fhir_request import ExportRequest, export_patients
from export_server.fhir_resources import patient_line

log = logging.getLogger("export_server")

LIFETIME = 3600.0


def instant(moment: datetime) -> str:
    """A FHIR instant in UTC, to the millisecond: `2025-08-26T00:00:00.000Z`."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Job:
    """One export: what was asked, when, how far planning is, and the files once complete."""

    id: str
    request: ExportRequest
    transaction_time: datetime
    hold_until: float
    owner: str | None = None  # the client that kicked it off (None: no authorization)
    total: int = 0  # CSV bytes to read
    read: int = 0
    files: list[ObservationFile] = field(default_factory=list)
    patients: tuple[str, ...] = ()
    error: str | None = None
    planned: bool = False
    expires: datetime | None = None
    last_poll: float | None = None
    task: asyncio.Task[None] | None = None

    @property
    def complete(self) -> bool:
        return self.expires is not None

    @property
    def running(self) -> bool:
        return self.error is None and not self.complete

    def progress(self) -> str:
        """The X-Progress text: how much of the CSV has been read."""
        if self.planned:
            return "100% complete, held by --fhir-hold"
        percent = 100 * self.read // self.total if self.total else 0
        return f"{percent}% complete"

    def patient_file(self) -> bytes:
        """The Patient file's NDJSON (a few lines: made whenever asked)."""
        updated = instant(self.request_start())
        return b"".join(patient_line(patient_id, updated) for patient_id in self.patients)

    def request_start(self) -> datetime:
        """When the export's data begin: every Patient's `meta.lastUpdated`."""
        return downloads_of(self.request.export_id)[0].start_time.replace(tzinfo=UTC)


class Jobs:
    """Every job of this server, by id. `hold` is the least time a job runs, in seconds."""

    def __init__(self, bodies: Bodies, converter: Converter, hold: float = 0.0) -> None:
        self.bodies = bodies
        self.converter = converter
        self.hold = hold
        self._jobs: dict[str, Job] = {}
        self.deleted: set[str] = set()

    def start(self, request: ExportRequest, owner: str | None = None) -> Job:
        job = Job(
            uuid.uuid4().hex, request, datetime.now(UTC), time.monotonic() + self.hold, owner
        )  # fmt: skip
        self._jobs[job.id] = job
        job.task = asyncio.create_task(self._run(job))
        return job

    def get(self, job_id: str) -> Job | None:
        """The job, or None: never started, deleted, or expired (then forgotten)."""
        job = self._jobs.get(job_id)
        if job is not None and job.expires is not None and datetime.now(UTC) >= job.expires:
            self.delete(job_id)
            return None
        return job

    def delete(self, job_id: str) -> bool:
        """Cancel or remove a job; False if there is none by that id."""
        job = self._jobs.pop(job_id, None)
        if job is None:
            return False
        self.deleted.add(job_id)
        if job.task is not None:
            job.task.cancel()
        return True

    def running(self, owner: str | None = None) -> list[Job]:
        """The running jobs of `owner` (a client id; None: of anyone, without authorization)."""
        return [job for job in self._jobs.values() if job.running and job.owner == owner]

    async def close(self) -> None:
        tasks = [job.task for job in self._jobs.values() if job.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, job: Job) -> None:
        request = job.request
        if "Patient" in request.types:
            after = request.since is None or job.request_start() > request.since
            kept = request.patients
            job.patients = tuple(
                p
                for p in export_patients(request.export_id)
                if after and (kept is None or p in kept)
            )
        if "Observation" in request.types:
            downloads = downloads_of(request.export_id)
            job.total = sum(self.bodies.size(d) for d in downloads)
            keep = (
                None
                if request.patients is None
                else frozenset(p.encode() for p in request.patients)
            )
            selection = Selection(request.since_key, keep)
            slots = asyncio.Semaphore(self.bodies.pool.size)

            def advance(n: int) -> None:
                job.read += n

            async def plan(download_index: int) -> ObservationFile:
                async with slots:
                    return await plan_file(
                        self.bodies, self.converter, downloads[download_index], selection, advance
                    )

            try:
                job.files = list(await asyncio.gather(*(plan(i) for i in range(len(downloads)))))
            except (GenerationError, ValueError) as exc:
                log.error("export job %s failed: %s", job.id, exc)
                job.error = str(exc)
                return
            except Exception as exc:  # a bug (or a converter process lost) fails one job
                log.exception("export job %s failed", job.id)
                job.error = f"internal error: {exc!r}"
                return
        job.planned = True
        await asyncio.sleep(max(0.0, job.hold_until - time.monotonic()))
        job.expires = datetime.now(UTC) + timedelta(seconds=LIFETIME)
