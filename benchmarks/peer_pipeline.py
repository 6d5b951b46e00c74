"""What a data engineer would write instead of this tool: fetch the files, then one query.

    python -m benchmarks.peer_pipeline PEER URL EXPORT_ID DIRECTORY   # prints the counts as JSON

PEER is `polars` (`scan_csv` of every file, `group_by().len()`), `duckdb` (`read_csv` of every
file, `group by`) or `fetch` (the files only: the transfer floor with Python's own client, no
query). The files are fetched with `urllib`, one thread per core (1 MiB copies), into DIRECTORY
(tmpfs if it can hold them), then the query runs with as many threads as there are cores. The
answer is printed in the tool's output shape, so that the benchmark can check it equals ours.

Neither library is a dependency of the project: the benchmark runs this module with
`uv run --with duckdb --with polars`.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

CORES = os.cpu_count() or 1
COPY_BYTES = 1 << 20


def fetch(url: str, export_id: str, directory: Path) -> list[Path]:
    """Every download of the export into `directory`, one thread per core."""
    with urllib.request.urlopen(f"{url}/api/export/{export_id}") as response:
        ids = json.load(response)["data"]["download_ids"]

    def one(download_id: str) -> Path:
        target = directory / f"{download_id}.csv"
        source = f"{url}/api/export/{export_id}/{download_id}/data"
        with urllib.request.urlopen(source) as response, target.open("wb") as out:
            shutil.copyfileobj(response, out, COPY_BYTES)
        return target

    with ThreadPoolExecutor(CORES) as pool:
        return list(pool.map(one, ids))


def shaped(groups: list[tuple[str, str, int]]) -> dict[str, Any]:
    """(patient, event type, count) groups in the tool's output shape."""
    patients: dict[str, dict[str, int]] = {}
    totals: dict[str, int] = {}
    for patient, event_type, n in groups:
        patients.setdefault(patient, {})[event_type] = n
        totals[event_type] = totals.get(event_type, 0) + n
    return {"patients": patients, "totals": totals}


def polars_counts(files: list[Path]) -> list[tuple[str, str, int]]:
    import polars as pl  # type: ignore[import-not-found,unused-ignore]

    frame = (
        pl.scan_csv([str(f) for f in files], schema_overrides={"value": pl.String})
        .group_by("patient_id", "event_type")
        .len()
        .collect()
    )
    return [(str(p), str(e), int(n)) for p, e, n in frame.iter_rows()]


def duckdb_counts(files: list[Path]) -> list[tuple[str, str, int]]:
    import duckdb  # type: ignore[import-not-found,unused-ignore]

    connection = duckdb.connect()
    connection.execute(f"SET threads = {CORES}")
    names = ", ".join(f"'{f}'" for f in files)
    rows = connection.execute(
        f"SELECT patient_id, event_type, count(*) FROM read_csv([{names}], header = true, "
        "all_varchar = true) GROUP BY patient_id, event_type"
    ).fetchall()
    return [(str(p), str(e), int(n)) for p, e, n in rows]


def main(argv: list[str]) -> None:
    peer, url, export_id, directory = argv
    os.environ["POLARS_MAX_THREADS"] = str(CORES)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        files = fetch(url, export_id, folder)
        if peer == "fetch":
            print(json.dumps({"files": len(files)}))
            return
        groups = polars_counts(files) if peer == "polars" else duckdb_counts(files)
        print(json.dumps(shaped(groups), sort_keys=True))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
