"""The length in bytes of every download's body, known before a byte of it is generated.

The bodies are deterministic, so their lengths are constants of the dataset's definition, as the
ETags are. That lets every `/data` response carry a Content-Length and answer any Range at once,
cached or not. The lengths are generated data: `body_sizes.json`, beside this module, holds every
download's size by export and download id, with the definition fingerprint (`fingerprint.py`)
they were measured for. A table made for another fingerprint is refused (the server does not
start), so the definition cannot change without the table being regenerated. Every body generated
into the cache is checked against the table as well.

This is what the server reads at run time; `sizes.py` is the command that checks, verifies and
regenerates the table.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from export_server.dataset import EXPORTS, Download, downloads_of
from export_server.errors import SizeTableError
from export_server.fingerprint import definition_fingerprint

TABLE_PATH = Path(__file__).with_name("body_sizes.json")
REGENERATE = "uv run python -m export_server.sizes --regenerate"


@dataclass(frozen=True)
class SizeTable:
    """Body lengths in bytes by export id and download id, and the fingerprint they belong to."""

    fingerprint: str
    sizes: Mapping[str, Mapping[uuid.UUID, int]]

    def size(self, download: Download) -> int:
        """The length of the download's CSV body, header included (KeyError if not listed)."""
        return self.sizes[download.export.export_id][download.id]


def _parse(raw: object, path: Path) -> SizeTable:
    def malformed(reason: str) -> SizeTableError:
        return SizeTableError(f"{path} is not a body-size table: {reason}")

    if not isinstance(raw, dict) or not isinstance(raw.get("fingerprint"), str):
        raise malformed("no fingerprint")
    if not isinstance(raw.get("sizes"), dict):
        raise malformed("no sizes")
    sizes: dict[str, dict[uuid.UUID, int]] = {}
    for export_id, by_id in raw["sizes"].items():
        if not isinstance(by_id, dict):
            raise malformed(f"the sizes of {export_id!r} are not an object")
        sizes[export_id] = {}
        for text, size in by_id.items():
            try:
                download_id = uuid.UUID(text)
            except ValueError:
                raise malformed(f"{text!r} is not a download id") from None
            if type(size) is not int or size <= 0:
                raise malformed(f"{export_id}/{text}: {size!r} is not a size")
            sizes[export_id][download_id] = size
    return SizeTable(raw["fingerprint"], sizes)


def read_table(path: Path = TABLE_PATH) -> SizeTable:
    """The table stored in `path`, unchecked. Raises SizeTableError when unreadable or malformed."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise SizeTableError(f"cannot read the body-size table {path}: {reason}") from exc
    except ValueError as exc:
        raise SizeTableError(f"{path} is not a body-size table: {exc}") from exc
    return _parse(raw, path)


def check_table(table: SizeTable, path: Path) -> None:
    """Raises SizeTableError unless the table is current and lists exactly every download."""
    current = definition_fingerprint()
    if table.fingerprint != current:
        raise SizeTableError(
            f"the body-size table {path} is stale: it was made for dataset fingerprint "
            f"{table.fingerprint[:12]}, the dataset's is now {current[:12]}; regenerate it: "
            f"{REGENERATE}"
        )
    expected = {(e, d.id) for e in EXPORTS for d in downloads_of(e)}
    listed = {(e, download_id) for e, by_id in table.sizes.items() for download_id in by_id}
    if listed != expected:
        raise SizeTableError(
            f"the body-size table {path} does not list the downloads ({len(expected - listed)} "
            f"missing, {len(listed - expected)} unknown); regenerate it: {REGENERATE}"
        )


def load_sizes(path: Path = TABLE_PATH) -> SizeTable:
    """The table stored in `path`, checked: raises SizeTableError unless it is usable."""
    table = read_table(path)
    check_table(table, path)
    return table


@cache
def packaged_sizes() -> SizeTable:
    """The table shipped in the package, checked once. Raises SizeTableError."""
    return load_sizes(TABLE_PATH)
