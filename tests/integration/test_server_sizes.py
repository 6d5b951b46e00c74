"""The body-size table as the real server process uses it: refused when stale, used as given."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx

from export_server.dataset import downloads_of
from export_server.size_table import TABLE_PATH
from tests.support.servers import RunningServer, server_command

DEMO_SECOND = downloads_of("demo")[1]


def table_with(tmp_path: Path, **changes: object) -> Path:
    """A copy of the packaged table with top-level `changes`."""
    document = json.loads(TABLE_PATH.read_text())
    path = tmp_path / "body_sizes.json"
    path.write_text(json.dumps({**document, **changes}))
    return path


def test_the_server_refuses_to_start_with_a_stale_table(tmp_path: Path) -> None:
    stale = table_with(tmp_path, fingerprint="0" * 64)
    command = server_command(["--no-cache", "--size-table", str(stale)])
    finished = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert finished.returncode == 2
    assert finished.stderr.startswith(f"server: the body-size table {stale} is stale")
    assert finished.stderr.count("\n") == 1


def test_the_server_uses_the_table_it_is_given(
    start_server: Callable[..., RunningServer], tmp_path: Path
) -> None:
    sizes = json.loads(TABLE_PATH.read_text())["sizes"]
    sizes["demo"][str(DEMO_SECOND.id)] += 1
    table = table_with(tmp_path, sizes=sizes)
    running = start_server("--no-cache", "--size-table", str(table))
    url = f"{running.url}/api/export/demo/{DEMO_SECOND.id}/data"
    response = httpx.get(url, headers={"Range": "bytes=0-9"}, timeout=30)
    assert response.status_code == 206
    assert response.headers["content-range"] == "bytes 0-9/424664"
    assert response.content == b"patient_id"
