"""The FHIR client over real sockets, against a fixture server replaying the Synthea sample.

Kick-off, a few polls with Retry-After, the manifest (its quirky `continuesInFile` ignored), each
file served with as many lines as the manifest declares, an error file summarised, the job
deleted; and a server that says "come back in three hours".
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from export_tally.errors import ExportJobGoneError
from export_tally.transport.client import ClientOptions, make_client
from export_tally.transport.fhir_bulk import ExportRequest, delete_job, kick_off, poll_status
from export_tally.transport.fhir_outcomes import summarise_error_files
from export_tally.transport.retry import Clock
from tests.support.fhir_replay import SAMPLE, Replay, fhir_replay, load_sample

pytestmark = pytest.mark.skipif(
    not (SAMPLE / "manifest.json").is_file(),
    reason=f"the Synthea sample is not in {SAMPLE} (it comes with the NDJSON counting work)",
)


class RecordingClock:
    """The real clock, remembering each wait."""

    def __init__(self) -> None:
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        time.sleep(seconds)

    @property
    def clock(self) -> Clock:
        return Clock(sleep=self.sleep)


@pytest.fixture
def replay() -> Replay:
    return load_sample()


@pytest.fixture
def served(replay: Replay) -> Iterator[str]:
    with fhir_replay(replay) as base:
        yield base


def test_an_export_of_the_sample_from_kick_off_to_delete(replay: Replay, served: str) -> None:
    outcome = {"resourceType": "OperationOutcome",
               "issue": [{"severity": "error", "code": "processing",
                          "diagnostics": "Observation/x could not be exported"}]}  # fmt: skip
    replay.add_error_file("7.OperationOutcome.ndjson", json.dumps(outcome).encode() + b"\n")
    options = ClientOptions(served)
    recording = RecordingClock()
    progress: list[str] = []
    with make_client(options) as client:
        status_url = kick_off(client, options, ExportRequest(), clock=recording.clock)
        assert status_url == f"{served}/jobs/1"
        manifest = poll_status(
            client, options, status_url, ("Observation",),
            on_progress=progress.append, clock=recording.clock,
        )  # fmt: skip
        assert recording.slept == [0, 0]  # Retry-After: 0, twice
        assert progress == ["in progress", "in progress"]

        assert [(f.url, f.type, f.count) for f in manifest.files] == [
            (f"{served}/bulkfiles/2.Observation.ndjson", "Observation", 10000),
            (f"{served}/bulkfiles/4.Observation.ndjson", "Observation", 6315),
        ]  # continuesInFile named 3.Observation.ndjson: never listed, never fetched
        assert [f.type for f in manifest.unrequested] == ["Patient"]
        assert manifest.requires_access_token is False
        for file in manifest.files + manifest.unrequested:
            body = client.get(file.url).raise_for_status().content
            assert body.count(b"\n") == file.count

        summary = summarise_error_files(client, options, [f.url for f in manifest.errors])
        assert (summary.files, summary.outcomes, summary.fails_run) == (1, 1, True)
        assert summary.first_texts == ("error processing: Observation/x could not be exported",)

        assert delete_job(client, options, status_url) is True
        assert replay.seen[-1] == ("DELETE", "/fhir/jobs/1")
        with pytest.raises(ExportJobGoneError, match="no such export job"):
            poll_status(client, options, status_url, ("Observation",))
        assert delete_job(client, options, status_url) is False  # already gone: fine

    kick = replay.seen[0]
    assert kick == ("GET", "/fhir/Patient/$export?_type=Observation")


def test_come_back_in_three_hours_is_reported_then_polled_at_the_cap(
    replay: Replay, served: str
) -> None:
    replay.retry_after = "10800"
    options = ClientOptions(served)
    recording = RecordingClock()
    told: list[tuple[float, float]] = []
    request = ExportRequest("everyone", ("Patient", "Observation"))
    with make_client(options) as client:
        status_url = kick_off(client, options, request, clock=recording.clock)
        manifest = poll_status(
            client, options, status_url, request.types, clock=recording.clock,
            max_wait=0.01, on_long_wait=lambda asked, cap: told.append((asked, cap)),
        )  # fmt: skip
    assert told == [(10800, 0.01)]
    assert recording.slept == [0.01, 0.01]
    assert len(manifest.files) == 3 and manifest.unrequested == ()
    assert replay.seen[0][1].startswith("/fhir/Group/everyone/$export?_type=Patient,Observation")
