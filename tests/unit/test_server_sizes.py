"""The size table: complete, current, and right where SPEC.md or a quick generation can tell."""

from __future__ import annotations

from export_server.dataset import EXPORTS, downloads_of
from export_server.generate import FORMAT_VERSION
from export_server.sizes import BODY_SIZES, SIZES_VERSION, body_size, measure


def test_sizes_were_generated_with_the_current_format_version() -> None:
    assert SIZES_VERSION == FORMAT_VERSION


def test_every_download_has_a_size() -> None:
    assert set(BODY_SIZES) == set(EXPORTS)
    for export_id, spec in EXPORTS.items():
        assert len(BODY_SIZES[export_id]) == spec.downloads


def test_sizes_match_spec_vectors() -> None:
    assert [body_size(d) for d in downloads_of("demo")] == [391_899, 424_663]
    assert body_size(downloads_of("large")[0]) == 429_651_516


def test_demo_sizes_match_generation() -> None:
    assert [measure(d) for d in downloads_of("demo")] == list(BODY_SIZES["demo"])


# Every `small` size is checked too, by the integration test that prewarms `small`: a fill commits
# an entry only when it has the size this table gives.
