"""The body-size table: current for the dataset's definition, complete, and right where the test
vectors of docs/server.md or a quick generation can tell; a table that is not is refused."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from export_server.__main__ import main as server_main
from export_server.dataset import EVENTS, EXPORTS, downloads_of
from export_server.errors import SizeTableError
from export_server.fingerprint import definition_fingerprint, fingerprint_of
from export_server.generate import FORMAT_VERSION
from export_server.size_table import TABLE_PATH, load_sizes, packaged_sizes, read_table
from export_server.sizes import measure

DEMO = EXPORTS["demo"]
HEART_RATE = EVENTS["heart_rate"]


def test_the_packaged_table_was_generated_for_the_current_definition() -> None:
    # Fails when dataset.py or FORMAT_VERSION changes and the table was not regenerated.
    assert read_table(TABLE_PATH).fingerprint == definition_fingerprint()


@pytest.mark.parametrize(
    "exports, events, format_version",
    [
        ({**EXPORTS, "demo": replace(DEMO, step_us=6_000_000)}, EVENTS, FORMAT_VERSION),
        ({**EXPORTS, "demo": replace(DEMO, max_rows=9_999)}, EVENTS, FORMAT_VERSION),
        ({**EXPORTS, "demo": replace(DEMO, downloads=3)}, EVENTS, FORMAT_VERSION),
        ({**EXPORTS, "demo": replace(DEMO, pool=DEMO.pool[::-1])}, EVENTS, FORMAT_VERSION),
        ({**EXPORTS, "demo": replace(DEMO, event_types=("bp_dia", "bp_sys"))}, EVENTS, FORMAT_VERSION),
        ({**EXPORTS, "demo": replace(DEMO, start=datetime(2025, 8, 27))}, EVENTS, FORMAT_VERSION),
        ({k: EXPORTS[k] for k in ("small", "demo", "large")}, EVENTS, FORMAT_VERSION),
        (EXPORTS, {**EVENTS, "heart_rate": replace(HEART_RATE, mu=76)}, FORMAT_VERSION),
        (EXPORTS, {**EVENTS, "heart_rate": replace(HEART_RATE, hi=199)}, FORMAT_VERSION),
        (EXPORTS, EVENTS, FORMAT_VERSION + "x"),
    ],
    ids=[
        "step", "max_rows", "downloads", "pool order", "event type order", "start", "export order",
        "mu", "hi", "format version",
    ],
)  # fmt: skip
def test_the_fingerprint_changes_with_anything_that_decides_the_bytes(
    exports: dict[str, object], events: dict[str, object], format_version: str
) -> None:
    altered = fingerprint_of(exports, events, format_version)  # type: ignore[arg-type]
    assert altered != definition_fingerprint()


def test_the_fingerprint_is_stable() -> None:
    assert fingerprint_of(EXPORTS, EVENTS, FORMAT_VERSION) == definition_fingerprint()
    same_draws = {**EVENTS, "heart_rate": replace(HEART_RATE, mu=75.0)}
    assert fingerprint_of(EXPORTS, same_draws, FORMAT_VERSION) == definition_fingerprint()


def test_every_download_has_a_size() -> None:
    table = packaged_sizes()
    assert list(table.sizes) == list(EXPORTS)
    for export_id, spec in EXPORTS.items():
        assert list(table.sizes[export_id]) == [d.id for d in downloads_of(export_id)]
        assert len(table.sizes[export_id]) == spec.downloads


def test_sizes_match_the_test_vectors() -> None:
    table = packaged_sizes()
    assert [table.size(d) for d in downloads_of("demo")] == [391_899, 424_663]
    assert table.size(downloads_of("large")[0]) == 429_651_516


def test_demo_sizes_match_generation() -> None:
    demo = downloads_of("demo")
    assert [measure(d) for d in demo] == [packaged_sizes().size(d) for d in demo]


# Every `small` size is checked too, by the integration test that prewarms `small`: a fill commits
# an entry only when it has the size this table gives. `python -m export_server.sizes --verify`
# checks any or all of them by generation.


def packaged_document() -> dict[str, object]:
    document: dict[str, object] = json.loads(TABLE_PATH.read_text())
    return document


def without_first_demo_size() -> dict[str, object]:
    document = packaged_document()
    del document["sizes"]["demo"][str(downloads_of("demo")[0].id)]  # type: ignore[index]
    return document


def with_a_small_download_in_demo() -> dict[str, object]:
    document = packaged_document()
    document["sizes"]["demo"][str(downloads_of("small")[0].id)] = 1  # type: ignore[index]
    return document


@pytest.mark.parametrize(
    "content, message",
    [
        (json.dumps({**packaged_document(), "fingerprint": "0" * 64}), "is stale: it was made for"),
        (json.dumps(without_first_demo_size()), "does not list the downloads (1 missing, 0 unknown)"),
        (json.dumps(with_a_small_download_in_demo()), "(0 missing, 1 unknown)"),
        (json.dumps({"sizes": {}}), "is not a body-size table: no fingerprint"),
        (json.dumps({"fingerprint": "0"}), "is not a body-size table: no sizes"),
        (json.dumps({"fingerprint": "0", "sizes": {"demo": 1}}), "the sizes of 'demo' are not an object"),
        (json.dumps({"fingerprint": "0", "sizes": {"demo": {"x": 1}}}), "'x' is not a download id"),
        (json.dumps({"fingerprint": "0", "sizes": {"demo": {"f725622a-22ea-4acc-aab8-810ec8b5e2c6": -1}}}),
         "-1 is not a size"),
        (json.dumps({"fingerprint": "0", "sizes": {"demo": {"f725622a-22ea-4acc-aab8-810ec8b5e2c6": 0}}}),
         "0 is not a size"),
        (json.dumps({"fingerprint": "0", "sizes": {"demo": {"f725622a-22ea-4acc-aab8-810ec8b5e2c6": True}}}),
         "True is not a size"),
        ("{not json", "is not a body-size table: Expecting property name"),
        (None, "cannot read the body-size table"),
    ],
    ids=["stale", "missing", "unknown", "no fingerprint", "no sizes", "sizes not an object",
         "bad id", "bad size", "zero size", "boolean size", "not json", "no file"],
)  # fmt: skip
def test_a_table_that_is_not_current_and_complete_is_refused(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "body_sizes.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SizeTableError) as refused:
        load_sizes(path)
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)


def test_the_server_refuses_to_start_with_a_stale_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "body_sizes.json"
    stale.write_text(json.dumps({**packaged_document(), "fingerprint": "0" * 64}))
    assert server_main(["--port", "0", "--no-cache", "--size-table", str(stale)]) == 2
    assert capsys.readouterr().err == (
        f"server: the body-size table {stale} is stale: it was made for dataset fingerprint "
        f"000000000000, the dataset's is now {definition_fingerprint()[:12]}; regenerate it: "
        "uv run python -m export_server.sizes --regenerate\n"
    )
