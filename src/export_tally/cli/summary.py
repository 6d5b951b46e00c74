"""What the user hears on stderr besides the answer: recoveries, checkpoints, skipped rows, and
after a failure, the finished work that a rerun resumes. Lines of text; cli.command prints them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from export_tally.scheduling.checkpoint import CheckpointStore
    from export_tally.scheduling.run import ExportResult


def run_summary(result: ExportResult, checkpoints: CheckpointStore | None) -> list[str]:
    """After a successful run: what was restored, split, recovered from, and skipped."""
    lines = []
    downloads = result.downloads
    restored = sum(d.restored for d in downloads)
    restored_parts = sum(d.restored_parts for d in downloads)
    if checkpoints is not None and (restored or restored_parts):
        parts = f" and {restored_parts} byte-range part(s) of the others" if restored_parts else ""
        lines.append(f"{restored} of {len(downloads)} download(s){parts} taken from checkpoints "
                     f"in {checkpoints.directory}")  # fmt: skip
    split = [d for d in downloads if d.parts > 1]
    if split:
        lines.append(f"counted {len(split)} download(s) in {sum(d.parts for d in split)} "
                     "byte-range parts")  # fmt: skip
    retried = sum(d.retries for d in downloads)
    if retried:
        resumes = sum(d.resumes for d in downloads)
        restarts = sum(d.restarts for d in downloads)
        lines.append(f"recovered from {retried} failed attempt(s): {resumes} resumed with Range, "
                     f"{restarts} restarted from the beginning; the counts are exact")  # fmt: skip
    for download in downloads:
        parsed = download.result
        if parsed.skipped:
            where = ", first at line(s) " + ", ".join(map(str, parsed.skipped_lines))
            lines.append(f"download {download.download_id}: skipped {parsed.skipped} bad row(s)"
                         + (where if parsed.skipped_lines else ""))  # fmt: skip
    lines.extend(without_patient(result.tally))
    return lines


def without_patient(aggregate: object) -> list[str]:
    """What was counted in the totals under no patient (NDJSON resources that name none)."""
    from export_tally.core.counts.tally import Tally

    if not isinstance(aggregate, Tally):
        return []
    counts = aggregate.without_patient
    if not counts:
        return []
    n = sum(counts.values())
    keys = ", ".join(f"{k} {key}" for key, k in sorted(counts.items()))
    return [f"{n} resource(s) name no patient: counted in the totals only ({keys})"]


def kept_summary(store: CheckpointStore | None, downloads: int) -> str | None:
    """After a failure: the finished work a rerun of the same command resumes, if any."""
    if store is None or not (store.downloads_held or store.parts_held):
        return None
    parts = f" and {store.parts_held} byte-range part(s) of the others" if store.parts_held else ""
    return (f"{store.downloads_held} of {downloads} download(s){parts} saved in "
            f"{store.directory}: rerun the same command to resume them")  # fmt: skip
