"""The three exports and their downloads, derived exactly as the reference server derives them.

Everything here is deterministic: the same export id always yields the same download ids, row
counts, patient lists and time ranges (docs/server.md, "How the downloads are derived").
"""

from __future__ import annotations

import hashlib
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache


@dataclass(frozen=True)
class EventSpec:
    """How one event type's value is drawn: clamp(int(gauss(mu, sigma)), lo, hi)."""

    name: str
    mu: float
    sigma: float
    lo: int
    hi: int


EVENTS: dict[str, EventSpec] = {
    spec.name: spec
    for spec in (
        EventSpec("heart_rate", 75, 15, 30, 200),
        EventSpec("spo2", 97, 2, 70, 100),
        EventSpec("bp_sys", 120, 20, 60, 250),
        EventSpec("bp_dia", 80, 15, 30, 150),
    )
}


@dataclass(frozen=True)
class ExportSpec:
    """The parameters of one export; `step_us` is the time step between rows in microseconds."""

    export_id: str
    downloads: int
    min_rows: int
    max_rows: int
    event_types: tuple[str, ...]
    pool: tuple[str, ...]
    step_us: int
    start: datetime = datetime(2025, 8, 26)


EXPORTS: dict[str, ExportSpec] = {
    spec.export_id: spec
    for spec in (
        ExportSpec(
            "demo", 2, 5_000, 10_000, ("bp_sys", "bp_dia"), ("P001", "P002", "P003", "P004"),
            7_000_000,
        ),
        ExportSpec(
            "small", 10, 500_000, 1_000_000, ("heart_rate", "spo2"),
            tuple(f"S{i:03d}" for i in range(1, 7)), 3_000_000,
        ),
        ExportSpec(
            "large", 20, 5_000_000, 10_000_000, ("heart_rate", "spo2", "bp_sys", "bp_dia"),
            tuple(f"L{i:03d}" for i in range(1, 21)), 300_000,
        ),
    )
}  # fmt: skip


@dataclass(frozen=True)
class Download:
    """One download's metadata, as the API reports it, plus what generation needs."""

    export: ExportSpec
    id: uuid.UUID
    rows: int
    patients: tuple[str, ...]
    start_time: datetime
    end_time: datetime

    def metadata(self) -> dict[str, object]:
        """The body of `GET /api/export/{export_id}/{download_id}` (inside its `data` envelope)."""
        return {
            "id": str(self.id),
            "rows": self.rows,
            "event_types": list(self.export.event_types),
            "patients": list(self.patients),
            "start_time": self.start_time.isoformat(),
            "end_time": self.end_time.isoformat(),
        }


def download_uuid(export_id: str, index: int) -> uuid.UUID:
    """SHA-256 of f"{export_id}_{index}", first 16 bytes, as a version-4 UUID."""
    digest = hashlib.sha256(f"{export_id}_{index}".encode()).digest()
    return uuid.UUID(bytes=digest[:16], version=4)


@cache
def downloads_of(export_id: str) -> tuple[Download, ...]:
    """All downloads of an export, in generation order. Raises KeyError for an unknown export."""
    return derive_downloads(EXPORTS[export_id])


def derive_downloads(spec: ExportSpec) -> tuple[Download, ...]:
    """The downloads an export with these parameters has, in generation order."""
    export_id = spec.export_id
    rng = random.Random(export_id)
    cursor = spec.start
    result = []
    for index in range(spec.downloads):
        rows = rng.randint(spec.min_rows, spec.max_rows)
        k = min(len(spec.pool), rng.randint(2, len(spec.pool)))
        patients = tuple(rng.sample(spec.pool, k))
        end = cursor + timedelta(microseconds=rows * spec.step_us)
        result.append(Download(spec, download_uuid(export_id, index), rows, patients, cursor, end))
        cursor = end
    return tuple(result)


def find_download(export_id: str, download_id: uuid.UUID) -> Download | None:
    """The download with this id in this export, or None. Raises KeyError for an unknown export."""
    for download in downloads_of(export_id):
        if download.id == download_id:
            return download
    return None
