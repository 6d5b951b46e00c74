"""What a report says about the run besides the numbers: what, where, when, how long, how it went.

Collected at the edge from the run's settings, the downloads' metadata and the run's result,
into plain values, so that a page can be built (and tested) without a run. Secrets stay out:
the token and extra headers are never shown, and URLs lose any credentials and query string.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from export_tally.scheduling.run import ExportResult
    from export_tally.transport.shared_terms import RemoteFile

_NOT_SHOWN = {"token", "header", "private_key"}  # credentials, or where they are kept
_OWN_LINE = {"export_id"}  # shown in the summary on its own
_FLAGS = {"types": "--type"}  # options whose flag is not their name


class RunChoices(Protocol):
    """What the report needs of the run's settings (cli's `Settings` has it)."""

    @property
    def export_id(self) -> str | None: ...
    @property
    def given(self) -> tuple[tuple[str, object], ...]: ...
    @property
    def stats(self) -> bool: ...
    @property
    def precision(self) -> int: ...


@dataclass(frozen=True)
class DownloadFacts:
    """How one download went: rows declared by its metadata and counted, and the recoveries."""

    id: str
    rows_declared: int
    rows_counted: int  # every data row, skipped ones included (what the metadata declares)
    skipped: int
    retries: int  # failed attempts, each followed by a resume or a restart
    resumes: int
    restarts: int
    parts: int = 1
    restored: bool = False  # taken from a checkpoint, not downloaded in this run


@dataclass(frozen=True)
class RunFacts:
    """Everything the report says about the run besides the report dict itself."""

    export_id: str
    server: str
    version: str
    options: tuple[str, ...]
    downloads: tuple[DownloadFacts, ...]
    span: tuple[datetime, datetime] | None  # earliest start and latest end in the metadata
    made: datetime
    seconds: float
    stats: bool = False
    precision: int = 1
    notes: tuple[str, ...] = ()  # what the source said about the export (FHIR error files...)

    @property
    def rows(self) -> int:
        return sum(d.rows_counted for d in self.downloads)


def safe_url(text: str) -> str:
    """`text` without user information, query or fragment when it is a URL; else unchanged."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return text
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def shown_options(given: Sequence[tuple[str, object]]) -> tuple[str, ...]:
    """The options given (as (dest, value), those that differ from their defaults), as flags;
    secrets replaced by a note."""
    shown = []
    for name, value in given:
        if name in _OWN_LINE:
            continue
        flag = _FLAGS.get(name, "--" + name.replace("_", "-"))
        if name in _NOT_SHOWN:
            shown.append(f"{flag} (given, not shown)")
        elif value is True:
            shown.append(flag)
        elif value is False:
            shown.append(f"--no-{name.replace('_', '-')}")
        elif name in ("server", "fhir", "resume_job"):
            shown.append(f"{flag} {safe_url(str(value))}")
        elif name == "types" and isinstance(value, list):  # --type A,B --type C
            shown.append(f"{flag} {','.join(n for names in value for n in names)}")
        else:
            shown.append(f"{flag} {value}")
    return tuple(shown)


def _span(downloads: Sequence[RemoteFile]) -> tuple[datetime, datetime] | None:
    """The earliest `start_time` and latest `end_time` the metadata gives, if it gives them."""
    starts, ends = [], []
    for info in downloads:
        data: Any = json.loads(info.metadata)
        try:
            start = datetime.fromisoformat(data["start_time"])
            end = datetime.fromisoformat(data["end_time"])
        except (KeyError, TypeError, ValueError):
            continue  # the API does not promise these fields; a report does without them
        starts.append(start)
        ends.append(end)
    try:
        return (min(starts), max(ends)) if starts else None
    except TypeError:  # naive and aware times mixed: no honest span
        return None


def _declared(rows: int | None, counted: int) -> int:
    """A file's declared rows; one that declared none (a FHIR manifest's count is optional)
    shows what was counted."""
    return counted if rows is None else rows


def collect_facts(
    choices: RunChoices,
    downloads: Sequence[RemoteFile],
    result: ExportResult,
    *,
    server: str,
    version: str,
    made: datetime,
    seconds: float,
    notes: Sequence[str] = (),
) -> RunFacts:
    """The facts of a finished run."""
    declared = {info.id: info.rows for info in downloads}
    facts = tuple(
        DownloadFacts(
            id=d.download_id,
            rows_declared=_declared(declared.get(d.download_id), d.result.rows),
            rows_counted=d.result.rows,
            skipped=d.result.skipped,
            retries=d.retries,
            resumes=d.resumes,
            restarts=d.restarts,
            parts=d.parts,
            restored=d.restored,
        )
        for d in result.downloads
    )
    return RunFacts(
        export_id=choices.export_id or "",
        server=safe_url(server),
        version=version,
        options=shown_options(choices.given),
        downloads=facts,
        span=_span(downloads),
        made=made,
        seconds=seconds,
        stats=choices.stats,
        precision=choices.precision,
        notes=tuple(notes),
    )
