"""`python -m export_server.sizes`: check, verify and regenerate the body-size table, in-process.

`--regenerate` generates every body, `large` included (minutes on all cores), so its test stands
in a fast measurement for the generator: what it tests is the command around it (the report, the
table written with the current fingerprint, which reads back through `load_sizes`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from export_server import sizes
from export_server.dataset import Download, downloads_of
from export_server.exitcodes import SizesExit
from export_server.fingerprint import definition_fingerprint
from export_server.size_table import TABLE_PATH, load_sizes, packaged_sizes
from export_server.sizes import main

DEMO_FIRST = downloads_of("demo")[0]


def copy_of_table(tmp_path: Path) -> Path:
    path = tmp_path / "body_sizes.json"
    shutil.copyfile(TABLE_PATH, path)
    return path


def test_check_says_the_packaged_table_is_current(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == SizesExit.OK
    fingerprint = definition_fingerprint()[:12]
    assert capsys.readouterr().out == (
        f"{TABLE_PATH}: current (32 sizes, dataset fingerprint {fingerprint})\n"
    )


def test_check_fails_on_a_stale_table_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = copy_of_table(tmp_path)
    document = json.loads(path.read_text())
    path.write_text(json.dumps({**document, "fingerprint": "f" * 64}))
    assert main(["--check", "--table", str(path)]) == SizesExit.WRONG
    err = capsys.readouterr().err
    assert err.startswith(f"sizes: the body-size table {path} is stale")
    assert err.endswith("regenerate it: uv run python -m export_server.sizes --regenerate\n")
    assert err.count("\n") == 1


def test_verify_generates_and_compares(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--verify", "--exports", "demo", "--workers", "1"]) == SizesExit.OK
    assert capsys.readouterr().out.splitlines() == [
        f"demo/{DEMO_FIRST.id} 391,899 bytes: ok",
        "demo/591ef21e-8a64-413a-b506-37a41cb6b896 424,663 bytes: ok",
        "2 sizes verified by generating every body",
    ]


def test_verify_finds_a_wrong_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = copy_of_table(tmp_path)
    document = json.loads(path.read_text())
    document["sizes"]["demo"][str(DEMO_FIRST.id)] = 391_898
    path.write_text(json.dumps(document))
    argv = ["--verify", "--exports", "demo", "--workers", "1", "--table", str(path)]
    assert main(argv) == SizesExit.WRONG
    captured = capsys.readouterr()
    assert f"demo/{DEMO_FIRST.id} 391,899 bytes: WRONG, the table says 391,898\n" in captured.out
    assert captured.err.startswith("sizes: 1 of 2 sizes are wrong")


def test_regenerate_writes_a_current_table_and_reports_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = copy_of_table(tmp_path)
    packaged = packaged_sizes()

    def measure(download: Download) -> int:
        return packaged.size(download) + (1 if download == DEMO_FIRST else 0)

    monkeypatch.setattr(sizes, "measure", measure)
    assert main(["--regenerate", "--table", str(path), "--workers", "1"]) == SizesExit.OK
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"1/32 demo/{DEMO_FIRST.id} 391,900 bytes (was 391,899)"
    assert out[1].endswith("424,663 bytes (unchanged)")
    assert len(out) == 33
    fingerprint = definition_fingerprint()[:12]
    assert out[-1] == f"wrote {path}: 32 sizes (1 changed), fingerprint {fingerprint}"
    regenerated = load_sizes(path)
    assert regenerated.size(DEMO_FIRST) == 391_900
    assert {d: regenerated.size(d) for d in downloads_of("large")} == {
        d: packaged.size(d) for d in downloads_of("large")
    }


def test_regenerate_over_an_unreadable_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "body_sizes.json"
    path.write_text("not a table")
    monkeypatch.setattr(sizes, "measure", packaged_sizes().size)
    assert main(["--regenerate", "--table", str(path), "--workers", "1"]) == SizesExit.OK
    out = capsys.readouterr().out
    assert out.count("bytes (new)") == 32 and "32 sizes (32 changed)" in out
    assert load_sizes(path) == packaged_sizes()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--regenerate", "--exports", "demo"], "--exports goes with --verify"),
        (["--check", "--verify"], "not allowed with argument"),
        (["--verify", "--exports", "huge"], "not a list of exports"),
        (["--workers", "0"], "less than 1"),
    ],
)
def test_bad_usage_exits_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == SizesExit.USAGE
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0]
