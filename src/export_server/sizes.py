"""`python -m export_server.sizes`: check, verify or regenerate the body-size table.

The table itself, and how the server reads it, is `size_table.py`; this is its maintenance
command, which generates bodies to measure them.

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
from pathlib import Path

from export_server.dataset import EXPORTS, Download, downloads_of
from export_server.errors import SizeTableError
from export_server.exitcodes import SizesExit
from export_server.fingerprint import definition_fingerprint
from export_server.generate import generate_chunks
from export_server.options import default_workers, export_list, positive_int
from export_server.size_table import REGENERATE, TABLE_PATH, load_sizes, read_table


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
