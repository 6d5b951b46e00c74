"""The FHIR Bulk Data routes under /fhir: metadata, kick-off, status, delete, files.

docs/fhir.md says what a client sees. Every error is an OperationOutcome. Injected faults
(`--fail-rate`, `--drop-rate`) are decided by the server's FaultMiddleware (`faults.py`) for the
requests `fault_reach` names, status polls and files, and answered the FHIR way once the request
is authorized: a failed status poll is a 500 whose issue code is `transient`, a failed file
request a 5xx or 429 OperationOutcome; a file to drop is cut by `faults.DroppedBody`.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Awaitable, Callable
from email.utils import format_datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from export_server.bodies import Bodies
from export_server.dataset import EXPORTS
from export_server.faults import DroppedBody, FaultConfig, Reach, RoutedFaults, fault_of
from export_server.fhir_access import SmartAuthority
from export_server.fhir_capability import capability_statement
from export_server.fhir_config import FhirConfig
from export_server.fhir_convert import Converter
from export_server.fhir_files import NDJSON, ObservationSource, bytes_gzipped, bytes_span
from export_server.fhir_jobs import Job, Jobs, instant
from export_server.fhir_outcome import (
    FhirError,
    error_response,
    fhir_json,
    issue,
    operation_outcome,
    outcome_response,
    resource_bytes,
)
from export_server.fhir_request import parse_kickoff
from export_server.ranges import answer_range, parse_range

Handler = Callable[[Request], Awaitable[Response]]
_OBSERVATION_FILE = re.compile(r"^Observation-(\d+)\.ndjson$")


def fault_reach(method: str, path: str) -> Reach:
    """What injected faults may do to a FHIR request: fail a status poll, fail or cut a file.

    Kick-offs, DELETE, metadata and the authority's routes are never failed: a client that
    retries a failed kick-off cannot tell whether a job was started.
    """
    parts = path.split("/")  # "", "fhir", "jobs", job id[, file name]
    if method not in ("GET", "HEAD") or parts[1:3] != ["fhir", "jobs"] or not all(parts[3:]):
        return Reach.NONE
    return {4: Reach.FAIL, 5: Reach.CUT}.get(len(parts), Reach.NONE)


FHIR_FAULTS = RoutedFaults("/fhir/", fault_reach)


def _accepts_gzip(request: Request) -> bool:
    for token in request.headers.get("accept-encoding", "").split(","):
        name, _, params = token.strip().partition(";")
        if name.strip().lower() == "gzip":
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


class FhirApi:
    """The routes and the jobs behind them; `close()` when the server stops."""

    def __init__(
        self, config: FhirConfig, bodies: Bodies, faults: FaultConfig,
        smart: SmartAuthority | None = None,
    ) -> None:  # fmt: skip
        self.config = config
        self.bodies = bodies
        self.faults = faults
        self.smart = smart
        self.converter = Converter(config.converters)
        self.jobs = Jobs(bodies, self.converter, config.hold)

    def routes(self) -> list[BaseRoute]:
        guarded = self._guarded
        return [
            *(self.smart.routes() if self.smart is not None else []),
            Route("/fhir/metadata", self.metadata, methods=["GET"]),
            Route(
                "/fhir/Group/{export_id}/$export", guarded(self.kickoff), methods=["GET", "POST"]
            ),
            Route("/fhir/Patient/$export", guarded(self.kickoff), methods=["GET", "POST"]),
            Route("/fhir/$export", guarded(self.kickoff), methods=["GET", "POST"]),
            Route("/fhir/jobs/{job_id}", guarded(self.status), methods=["GET", "DELETE"]),
            Route("/fhir/jobs/{job_id}/{name}", guarded(self.file), methods=["GET"]),
        ]

    async def close(self) -> None:
        await self.jobs.close()
        await self.converter.close()

    def _guarded(self, handler: Handler) -> Handler:
        """The handler, behind the authority (when there is one), answering FhirError."""

        async def guarded(request: Request) -> Response:
            if self.smart is not None:
                refused = self.smart.authorize(request)
                if refused is not None:
                    return refused
            try:
                return await handler(request)
            except FhirError as error:
                return error_response(error)

        return guarded

    def _base(self, request: Request) -> str:
        return str(request.base_url).rstrip("/") + "/fhir"

    def _retry_after(self) -> dict[str, str]:
        return {"Retry-After": str(self.config.poll_seconds)}

    def _fault_retry(self) -> dict[str, str]:
        """An injected fault's Retry-After: `--retry-after`, as on the CSV API."""
        return {"Retry-After": str(self.faults.retry_after)}

    async def metadata(self, request: Request) -> Response:
        """Open to every client, as FHIR servers keep their capability statement."""
        return fhir_json(capability_statement(self._base(request), self.smart is not None))

    async def kickoff(self, request: Request) -> Response:
        if "export_id" in request.path_params:
            export_id: str = request.path_params["export_id"]
            level = "group"
            if export_id not in EXPORTS:
                known = ", ".join(EXPORTS)
                raise FhirError(404, "not-found", f"no Group {export_id!r} (groups: {known})")
        else:
            export_id = self.config.population
            level = "patient" if request.url.path.startswith("/fhir/Patient/") else "system"
        # Behind an authority a client is its client id; without one, anyone.
        owner: str | None = getattr(request.state, "smart_client_id", None)
        if self.config.rate_limit and self.jobs.running(owner):
            raise FhirError(
                429, "throttled", "an export is running: wait for it to complete, or delete it",
                self._retry_after(),
            )  # fmt: skip
        job = self.jobs.start(await parse_kickoff(request, export_id, level), owner)
        status_url = f"{self._base(request)}/jobs/{job.id}"
        text = f"export of Group {export_id} started; poll {status_url}"
        return outcome_response(202, "informational", text, {"Content-Location": status_url}, "information")  # fmt: skip

    def _job(self, request: Request) -> Job:
        job_id: str = request.path_params["job_id"]
        job = self.jobs.get(job_id)
        if job is None:
            gone = "was deleted" if job_id in self.jobs.deleted else "does not exist (or expired)"
            raise FhirError(404, "not-found", f"export job {job_id} {gone}")
        return job

    async def status(self, request: Request) -> Response:
        if request.method == "DELETE":
            job = self._job(request)
            self.jobs.delete(job.id)
            return outcome_response(202, "informational", f"export job {job.id} deleted", severity="information")  # fmt: skip
        if fault_of(request).status is not None:
            raise FhirError(
                500, "transient", "injected fault: poll again later", self._fault_retry()
            )
        job = self._job(request)
        if job.error is not None:
            raise FhirError(500, "exception", f"the export failed: {job.error}")
        if not job.complete:
            now = time.monotonic()
            last = job.last_poll
            if (
                self.config.rate_limit
                and last is not None
                and now - last < self.config.poll_seconds
            ):
                raise FhirError(
                    429, "throttled", "polled too soon: wait Retry-After seconds",
                    self._retry_after(),
                )  # fmt: skip
            job.last_poll = now
            headers = {"X-Progress": job.progress(), **self._retry_after()}
            return Response(status_code=202, headers=headers)
        assert job.expires is not None
        headers = {"Expires": format_datetime(job.expires, usegmt=True)}
        return JSONResponse(self._manifest(request, job), headers=headers)

    def _manifest(self, request: Request, job: Job) -> dict[str, object]:
        files = f"{self._base(request)}/jobs/{job.id}"
        output: list[dict[str, object]] = []
        if job.patients:
            output.append({"type": "Patient", "url": f"{files}/Patient.ndjson", "count": len(job.patients)})  # fmt: skip
        for index, planned in enumerate(job.files):
            if planned.count:
                url = f"{files}/Observation-{index}.ndjson"
                output.append({"type": "Observation", "url": url, "count": planned.count})
        errors = []
        if job.request.ignored:
            url = f"{files}/errors.ndjson"
            errors.append({"type": "OperationOutcome", "url": url, "count": len(job.request.ignored)})  # fmt: skip
        return {
            "transactionTime": instant(job.transaction_time),
            "request": job.request.url,
            "requiresAccessToken": self.smart is not None,
            "output": output,
            "error": errors,
        }

    async def file(self, request: Request) -> Response:
        fault = fault_of(request)
        if fault.status is not None:
            headers = self.faults.retry_headers(fault.status)
            raise FhirError(fault.status, "transient", "injected fault: try again", headers)
        job = self._job(request)
        if not job.complete:
            raise FhirError(404, "not-found", f"export job {job.id} has no files yet")
        name: str = request.path_params["name"]
        source = self._source(job, name)
        size = source.planned.size if isinstance(source, ObservationSource) else len(source)
        etag = '"' + hashlib.sha256(f"{job.id}/{name}".encode()).hexdigest()[:32] + '"'
        headers = {"Content-Type": NDJSON, "Accept-Ranges": "bytes", "ETag": etag}
        spec = parse_range(request.headers.get("range"))
        if spec is not None and request.headers.get("if-range", etag) != etag:
            spec = None  # the client's copy is of another file: send this one whole
        if spec is None and _accepts_gzip(request):
            headers.update({"Content-Encoding": "gzip", "Vary": "Accept-Encoding"})
            chunks = source.gzipped() if isinstance(source, ObservationSource) else bytes_gzipped(source)  # fmt: skip
            # The compressed length is not known before the end: cut it about where a tenth would be.
            drop = fault.drop_point(size // 10)
            return DroppedBody(chunks, headers, 200, drop, media_type=NDJSON)
        answer = answer_range(spec, size)
        headers.update(answer.headers)
        if answer.status == 416:
            del headers["Content-Type"]  # the answer is an OperationOutcome
            text = f"the range {request.headers['range']!r} is beyond the file's {size} bytes"
            raise FhirError(416, "invalid", text, headers)
        start, stop = answer.start, answer.stop
        span = source.span(start, stop) if isinstance(source, ObservationSource) else bytes_span(source, start, stop)  # fmt: skip
        drop = fault.drop_point(stop - start)
        return DroppedBody(span, headers, answer.status, drop, media_type=NDJSON)

    def _source(self, job: Job, name: str) -> ObservationSource | bytes:
        """What the file `name` of the job is made from: a planned file, or its bytes."""
        if name == "Patient.ndjson" and job.patients:
            return job.patient_file()
        if name == "errors.ndjson" and job.request.ignored:
            outcomes = (operation_outcome(issue("not-supported", text, "warning")) for text in job.request.ignored)  # fmt: skip
            return b"".join(resource_bytes(outcome) + b"\n" for outcome in outcomes)
        match = _OBSERVATION_FILE.match(name)
        if match is not None and int(match.group(1)) < len(job.files):
            planned = job.files[int(match.group(1))]
            if planned.count:
                return ObservationSource(self.bodies, self.converter, planned)
        raise FhirError(404, "not-found", f"export job {job.id} has no file {name!r}")
