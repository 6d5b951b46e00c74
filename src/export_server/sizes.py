"""The length in bytes of every download's body, known before a byte of it is generated.

The bodies are deterministic, so their lengths are constants of the dataset's definition, as the
ETags are. That lets every `/data` response carry a Content-Length and answer any Range at once,
cached or not. The lengths are generated data: `body_sizes.json`, beside this module, holds every
download's size by export and download id, with the definition fingerprint (`fingerprint.py`)
they were measured for. A table made for another fingerprint is refused (the server does not
start), so the definition cannot change without the table being regenerated. Every body generated
into the cache is checked against the table as well.

    uv run python -m export_server.sizes [--check]     is the table current? (instant)
    uv run python -m export_server.sizes --verify [--exports demo,small]
                                                       generate bodies, compare with the table
    uv run python -m export_server.sizes --regenerate  generate every body, write the table

Generating `large` (6.7 GB of CSV) takes minutes on all cores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from enum import IntEnum
from functools import cache
from pathlib import Path

from export_server.dataset import EXPORTS, Download, downloads_of
from export_server.errors import SizeTableError
from export_server.fingerprint import definition_fingerprint
from export_server.generate import generate_chunks
from export_server.options import default_workers, export_list, positive_int

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


def write_table(path: Path, sizes: Mapping[Download, int]) -> None:
    """Store every download's size with the current fingerprint (atomically: a temporary file is
    renamed over `path`). Raises KeyError if a download has no size."""
    document = {
        "fingerprint": definition_fingerprint(),
        "sizes": {
            export_id: {str(d.id): sizes[d] for d in downloads_of(export_id)}
            for export_id in EXPORTS
        },
    }
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def measure(download: Download) -> int:
    """The length of the body, measured by generating it (takes seconds for `large`)."""
    return sum(map(len, generate_chunks(download)))


def _measure_all(downloads: Sequence[Download], workers: int) -> Iterator[tuple[Download, int]]:
    """Each download with its measured size, in order, on `workers` processes (1: this one)."""
    if workers == 1:
        for download in downloads:
            yield download, measure(download)
        return
    with ProcessPoolExecutor(workers) as executor:
        yield from zip(downloads, executor.map(measure, downloads), strict=True)


class SizesExit(IntEnum):
    OK = 0
    WRONG = 1  # the table is stale, incomplete, malformed, or a size is wrong
    USAGE = 2


def _name(download: Download) -> str:
    return f"{download.export.export_id}/{download.id}"


def _check(path: Path) -> SizesExit:
    table = load_sizes(path)
    count = sum(len(by_id) for by_id in table.sizes.values())
    print(f"{path}: current ({count} sizes, dataset fingerprint {table.fingerprint[:12]})")
    return SizesExit.OK


def _verify(path: Path, exports: Sequence[str], workers: int) -> SizesExit:
    table = load_sizes(path)
    downloads = [d for export_id in exports for d in downloads_of(export_id)]
    wrong = 0
    for download, size in _measure_all(downloads, workers):
        expected = table.size(download)
        wrong += size != expected
        verdict = "ok" if size == expected else f"WRONG, the table says {expected:,}"
        print(f"{_name(download)} {size:,} bytes: {verdict}", flush=True)
    if wrong:
        print(f"sizes: {wrong} of {len(downloads)} sizes are wrong; {REGENERATE}", file=sys.stderr)
        return SizesExit.WRONG
    print(f"{len(downloads)} sizes verified by generating every body")
    return SizesExit.OK


def _regenerate(path: Path, workers: int) -> SizesExit:
    try:
        before: Mapping[str, Mapping[uuid.UUID, int]] = read_table(path).sizes
    except SizeTableError:
        before = {}
    downloads = [d for export_id in EXPORTS for d in downloads_of(export_id)]
    sizes: dict[Download, int] = {}
    changed = 0
    for download, size in _measure_all(downloads, workers):
        sizes[download] = size
        old = before.get(download.export.export_id, {}).get(download.id)
        changed += old != size
        note = "unchanged" if old == size else "new" if old is None else f"was {old:,}"
        progress = f"{len(sizes)}/{len(downloads)}"
        print(f"{progress} {_name(download)} {size:,} bytes ({note})", flush=True)
    write_table(path, sizes)
    fingerprint = definition_fingerprint()[:12]
    print(f"wrote {path}: {len(sizes)} sizes ({changed} changed), fingerprint {fingerprint}")
    return SizesExit.OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m export_server.sizes",
        description="Check, verify or regenerate the table of body sizes (body_sizes.json).",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--check", dest="mode", action="store_const", const="check",
        help="the table is current: made for the dataset's fingerprint, one size a download "
        "(the default; instant)",
    )  # fmt: skip
    mode.add_argument(
        "--verify", dest="mode", action="store_const", const="verify",
        help="generate the bodies (of --exports) and compare their sizes with the table",
    )  # fmt: skip
    mode.add_argument(
        "--regenerate", dest="mode", action="store_const", const="regenerate",
        help="generate every body and write the table with the dataset's fingerprint",
    )  # fmt: skip
    parser.set_defaults(mode="check")
    parser.add_argument(
        "--exports", type=export_list, default=None, metavar="EXPORTS",
        help="with --verify: only these exports, comma-separated (default: all)",
    )  # fmt: skip
    parser.add_argument(
        "--table", type=Path, default=TABLE_PATH, metavar="FILE",
        help="the table to read or write (default: the one in the package)",
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=positive_int, default=default_workers(), metavar="N",
        help="generator processes (default: the number of usable CPUs)",
    )  # fmt: skip
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.exports is not None and args.mode != "verify":
        parser.error("--exports goes with --verify")
    try:
        if args.mode == "verify":
            return _verify(args.table, args.exports or tuple(EXPORTS), args.workers)
        if args.mode == "regenerate":
            return _regenerate(args.table, args.workers)
        return _check(args.table)
    except SizeTableError as exc:
        print(f"sizes: {exc}", file=sys.stderr)
        return SizesExit.WRONG


if __name__ == "__main__":
    sys.exit(main())
