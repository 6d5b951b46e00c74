"""Progress on stderr: rows done of the rows the metadata declares, rate and ETA (tqdm)."""

from __future__ import annotations

from typing import TYPE_CHECKING, TextIO

from tqdm import tqdm

if TYPE_CHECKING:
    from types import TracebackType


class Progress:
    """A progress bar over `total` rows, shown only when `enabled`; a context manager."""

    def __init__(self, total: int, label: str, stream: TextIO, enabled: bool) -> None:
        self._bar = tqdm(
            total=total,
            desc=label,
            unit="rows",
            unit_scale=True,
            file=stream,
            disable=not enabled,
            dynamic_ncols=True,
            smoothing=0.1,
        )

    def advance(self, rows: int) -> None:
        """Count `rows` more rows done (negative when a restarted download takes some back)."""
        self._bar.update(rows)

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._bar.close()
