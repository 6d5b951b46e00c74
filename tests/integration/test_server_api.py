"""Every endpoint and error case of docs/server.md, against the real server over HTTP."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.servers import RunningServer

DEMO_FIRST = "f725622a-22ea-4acc-aab8-810ec8b5e2c6"
DEMO_FIRST_SHA = "40c49c8163ce69902de6b955bf73dc67084e94dd22f296f8868d49317dd58bf7"


def get(url: str, path: str, **kwargs: object) -> httpx.Response:
    return httpx.get(url + path, timeout=30, **kwargs)  # type: ignore[arg-type]


def test_lists_exports(server_url: str) -> None:
    response = get(server_url, "/api/export")
    assert response.status_code == 200
    assert response.json() == {"data": {"export_ids": ["demo", "small", "large"]}}


def test_lists_downloads_in_generation_order(server_url: str) -> None:
    body = get(server_url, "/api/export/demo").json()
    assert body == {
        "data": {"id": "demo", "download_ids": [DEMO_FIRST, "591ef21e-8a64-413a-b506-37a41cb6b896"]}
    }
    assert len(get(server_url, "/api/export/large").json()["data"]["download_ids"]) == 20


def test_download_metadata(server_url: str) -> None:
    assert get(server_url, f"/api/export/demo/{DEMO_FIRST}").json() == {
        "data": {
            "id": DEMO_FIRST, "rows": 9014, "event_types": ["bp_sys", "bp_dia"],
            "patients": ["P001", "P004", "P003"],
            "start_time": "2025-08-26T00:00:00", "end_time": "2025-08-26T17:31:38",
        }
    }  # fmt: skip


@pytest.mark.parametrize(
    "path, status, detail",
    [
        pytest.param("/api/export/nope", 404, "Export not found", id="unknown-export"),
        pytest.param(f"/api/export/nope/{DEMO_FIRST}", 404, "Export not found", id="meta-unknown-export"),
        pytest.param(f"/api/export/nope/{DEMO_FIRST}/data", 404, "Export not found", id="data-unknown-export"),
        pytest.param("/api/export/demo/00000000-0000-4000-8000-000000000000", 404, "Download not found", id="unknown-download"),
        pytest.param("/api/export/demo/00000000-0000-4000-8000-000000000000/data", 404, "Download not found", id="data-unknown-download"),
        pytest.param("/api/export/small/" + DEMO_FIRST, 404, "Download not found", id="download-of-another-export"),
    ],
)  # fmt: skip
def test_not_found(server_url: str, path: str, status: int, detail: str) -> None:
    response = get(server_url, path)
    assert response.status_code == status
    assert response.json() == {"detail": detail}


@pytest.mark.parametrize("suffix", ["", "/data"])
def test_download_id_that_is_not_a_uuid_is_422(server_url: str, suffix: str) -> None:
    response = get(server_url, f"/api/export/demo/not-a-uuid{suffix}")
    assert response.status_code == 422
    assert "detail" in response.json()


@pytest.mark.parametrize(
    "spelling", [DEMO_FIRST.upper(), DEMO_FIRST.replace("-", ""), "{" + DEMO_FIRST + "}"]
)
def test_other_uuid_spellings_find_the_same_download(server_url: str, spelling: str) -> None:
    meta = get(server_url, f"/api/export/demo/{spelling}")
    assert meta.status_code == 200
    assert meta.json()["data"]["id"] == DEMO_FIRST
    body = get(server_url, f"/api/export/demo/{spelling}/data").content
    assert hashlib.sha256(body).hexdigest() == DEMO_FIRST_SHA


def test_data_is_csv_and_matches_spec(server_url: str) -> None:
    response = get(server_url, f"/api/export/demo/{DEMO_FIRST}/data")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["etag"].startswith('"')
    assert hashlib.sha256(response.content).hexdigest() == DEMO_FIRST_SHA


def test_openapi_docs_are_served(server_url: str) -> None:
    assert get(server_url, "/docs").status_code == 200


@pytest.mark.slow
def test_first_bytes_of_a_large_download_arrive_at_once(server_url: str) -> None:
    ids = get(server_url, "/api/export/large").json()["data"]["download_ids"]
    with httpx.stream(
        "GET", f"{server_url}/api/export/large/{ids[-1]}/data", timeout=10
    ) as response:
        first = next(response.iter_bytes())
    assert first.startswith(b"patient_id,event_time,event_type,value\n")


def test_no_range_mode_looks_like_the_reference(start_server: object) -> None:
    running: RunningServer = start_server("--no-range")  # type: ignore[operator]
    response = get(
        running.url, f"/api/export/demo/{DEMO_FIRST}/data", headers={"Range": "bytes=10-"}
    )
    assert response.status_code == 200
    for header in ("content-length", "etag", "accept-ranges"):
        assert header not in response.headers
    assert response.headers["transfer-encoding"] == "chunked"
    assert hashlib.sha256(response.content).hexdigest() == DEMO_FIRST_SHA


def test_binds_loopback_by_default_and_announces_its_address(server: RunningServer) -> None:
    host = urlsplit(server.url).hostname
    assert host == "127.0.0.1"
    assert any(line.startswith("listening on http://127.0.0.1:") for line in server.log)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--port", "-1"], "outside 0-65535"),
        (["--fail-rate", "1.5"], "outside [0, 1]"),
        (["--drop-rate", "-0.1"], "outside [0, 1]"),
        (["--fail-rate", "x"], "not a number"),
    ],
)
def test_bad_flags_exit_2_with_one_line(args: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "export_server", *args], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert message in result.stderr


def test_port_in_use_is_a_clear_error(server: RunningServer) -> None:
    busy = urlsplit(server.url).port  # the session server listens there
    result = subprocess.run(
        [sys.executable, "-m", "export_server", "--port", str(busy)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert f"server: cannot listen on 127.0.0.1:{busy}: " in result.stderr
    assert server.process.poll() is None
    assert httpx.get(f"{server.url}/api/export", timeout=30).status_code == 200
