"""What each file contributed to a run, put together from its task's outcome or from its parts.

Scheduling owns these: transport says what one fetch gave (`FetchOutcome`), a `TaskResult` says
which task it was for, and a `DownloadResult` is one file's share of the answer, whole or
reassembled from its byte-range parts and checked against the rows the server declared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from export_tally.core.aggregation import BodyResult
from export_tally.errors import ProtocolError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from export_tally.core.aggregation import Aggregator
    from export_tally.scheduling.tasks import TaskResult
    from export_tally.transport.shared_terms import FetchOutcome


@dataclass(frozen=True)
class DownloadResult:
    """What one file contributed: its parse result and how hard it was to get.

    `retries` counts the failed attempts made in this run (none for what checkpoints gave).
    """

    download_id: str
    result: BodyResult[Any]
    bytes: int
    retries: int = 0
    resumes: int = 0  # attempts that continued where a cut-off body stopped
    restarts: int = 0  # times the partial count was thrown away and the body started again
    restored: bool = False  # taken from a checkpoint, not downloaded in this run
    parts: int = 1  # byte ranges it was counted in (see core/csv/split.py)
    restored_parts: int = 0  # of those, ranges taken from checkpoints (no attempt in this run)


def whole_result(done: TaskResult, miscounted: FetchOutcome | None = None) -> DownloadResult:
    """A whole file's task result as the file's contribution; `miscounted`: an earlier fetch of
    it whose rows differed from the declared ones (thrown away: one restart more)."""
    outcome = done.outcome
    retries, resumes, restarts = outcome.retries, outcome.resumes, outcome.restarts
    if miscounted is not None:
        retries += miscounted.retries
        resumes += miscounted.resumes
        restarts += miscounted.restarts + 1
    return DownloadResult(
        done.task.file.id, outcome.result, outcome.bytes, retries, resumes, restarts,
        restored=done.restored,
    )  # fmt: skip


def check_declared_rows(done: TaskResult, miscounted: FetchOutcome | None) -> bool:
    """Whether a whole file's rows are the rows the server declared (True when it declared
    none). False the first time they are not (count it once more from scratch); ProtocolError
    the second."""
    file, rows = done.task.file, done.outcome.result.rows
    if file.rows is None or rows == file.rows:
        return True
    if miscounted is not None:
        raise ProtocolError(
            f"{file.label}: counted {rows} rows but the metadata declares {file.rows}, twice"
        )
    return False


def needs_whole_count(parts: Sequence[TaskResult]) -> bool:
    """Whether any part saw a quote: a quoted field may hide a newline that is not a record
    boundary, so the file is counted again whole."""
    return any(p.outcome.saw_quote for p in parts)


def reassemble(parts: Sequence[TaskResult], aggregation: Aggregator[Any]) -> DownloadResult:
    """A split file's contribution from all of its parts (none saw a quote).

    Raises ProtocolError when the parts' rows do not add up to the rows the server declared.
    """
    task = parts[0].task
    file, part = task.file, task.part
    assert part is not None, "reassembling a task that is not a part"
    rows = sum(p.outcome.result.rows for p in parts)
    if file.rows is not None and rows != file.rows:
        raise ProtocolError(
            f"{file.label}: its parts counted {rows} rows but the metadata declares {file.rows}"
        )
    merged = BodyResult(
        aggregation.merge([p.outcome.result.aggregate for p in parts]),
        rows,
        sum(p.outcome.result.skipped for p in parts),
        (),  # part-relative line numbers would mislead
    )
    return DownloadResult(
        file.id, merged, part.splittable.size,
        retries=sum(p.outcome.retries for p in parts if not p.restored),
        parts=len(parts), restored_parts=sum(p.restored for p in parts),
    )  # fmt: skip
