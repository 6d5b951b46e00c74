"""The fast generator against the oracle (docs/server.md written literally) and its test vectors."""

from __future__ import annotations

import hashlib
from itertools import islice

import pytest

from export_server.dataset import EXPORTS, Download, download_uuid, downloads_of
from export_server.generate import generate_chunks
from tests.support.oracle import oracle_body

ALL_DOWNLOADS = [d for export_id in EXPORTS for d in downloads_of(export_id)]


def fast_prefix(download: Download, rows: int) -> bytes:
    """The header and the first `rows` rows from the fast generator."""
    lines: list[bytes] = []
    for chunk in generate_chunks(download, chunk_rows=min(rows, 16_384) or 1):
        lines.extend(chunk.splitlines(keepends=True))
        if len(lines) > rows:
            break
    return b"".join(lines[: rows + 1])


def test_demo_metadata_matches_spec() -> None:
    first, second = downloads_of("demo")
    assert first.metadata() == {
        "id": "f725622a-22ea-4acc-aab8-810ec8b5e2c6", "rows": 9014,
        "event_types": ["bp_sys", "bp_dia"], "patients": ["P001", "P004", "P003"],
        "start_time": "2025-08-26T00:00:00", "end_time": "2025-08-26T17:31:38",
    }  # fmt: skip
    assert second.metadata()["id"] == "591ef21e-8a64-413a-b506-37a41cb6b896"
    assert second.metadata()["end_time"] == "2025-08-27T12:31:28"
    assert second.start_time == first.end_time


def test_large_first_download_metadata_matches_spec() -> None:
    first = downloads_of("large")[0]
    assert str(first.id) == "9fff8c21-185b-40ac-a3e4-203c6fb742d5"
    assert first.rows == 9_818_330
    assert len(first.patients) == 15
    assert first.end_time.isoformat() == "2025-09-29T02:11:39"


@pytest.mark.parametrize("export_id, rows", [("small", 7_083_793), ("large", 153_630_201)])
def test_export_row_totals_match_spec(export_id: str, rows: int) -> None:
    assert sum(d.rows for d in downloads_of(export_id)) == rows


def test_download_ids_are_version_4_uuids() -> None:
    assert download_uuid("demo", 0).version == 4
    assert [d.id for d in downloads_of("small")] == [download_uuid("small", i) for i in range(10)]


@pytest.mark.parametrize(
    "index, size, digest",
    [
        (0, 391_899, "40c49c8163ce69902de6b955bf73dc67084e94dd22f296f8868d49317dd58bf7"),
        (1, 424_663, "64975b5e457b80b2a6ddd8081ee32b7260bb171066fd49bc433e18bd18a4433b"),
    ],
)
def test_demo_bodies_match_spec_vectors(index: int, size: int, digest: str) -> None:
    download = downloads_of("demo")[index]
    fast = b"".join(generate_chunks(download))
    assert len(fast) == size
    assert hashlib.sha256(fast).hexdigest() == digest
    assert fast == oracle_body(download)


@pytest.mark.parametrize("download", ALL_DOWNLOADS, ids=lambda d: f"{d.export.export_id}-{d.id}")
def test_fast_generator_matches_oracle_prefix(download: Download) -> None:
    rows = min(download.rows, 20_000)
    assert fast_prefix(download, rows) == oracle_body(download, rows)


@pytest.mark.slow
@pytest.mark.parametrize("download", ALL_DOWNLOADS, ids=lambda d: f"{d.export.export_id}-{d.id}")
def test_fast_generator_matches_oracle_200k_rows(download: Download) -> None:
    rows = min(download.rows, 200_000)
    assert fast_prefix(download, rows) == oracle_body(download, rows)


@pytest.mark.slow
def test_first_large_download_matches_spec_sha256() -> None:
    digest = hashlib.sha256()
    size = 0
    for chunk in generate_chunks(downloads_of("large")[0]):
        digest.update(chunk)
        size += len(chunk)
    assert size == 429_651_516
    assert digest.hexdigest() == "f89940b407d9b52d80f21b9023673e4f90e9c3a9ee6f3fd22e7e35843efc1e16"


def test_chunks_hold_whole_rows() -> None:
    chunks = list(islice(generate_chunks(downloads_of("demo")[0], chunk_rows=100), 5))
    assert all(chunk.endswith(b"\n") for chunk in chunks)
    assert [chunk.count(b"\n") for chunk in chunks[1:]] == [100] * 4
