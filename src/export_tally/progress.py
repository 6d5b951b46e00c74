"""Progress on stderr: rows done of the rows the metadata declares, rate and ETA (tqdm).

tqdm is imported only when the bar is shown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Never, TextIO

if TYPE_CHECKING:
    from types import TracebackType

    from tqdm import tqdm


class Progress:
    """A progress bar over `total` rows, shown only when `enabled`; a context manager."""

    def __init__(self, total: int, label: str, stream: TextIO, enabled: bool) -> None:
        self._bar: tqdm[Never] | None = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total,
                desc=label,
                unit="rows",
                unit_scale=True,
                file=stream,
                dynamic_ncols=True,
                smoothing=0.1,
            )

    def advance(self, rows: int) -> None:
        """Count `rows` more rows done (negative when a restarted download takes some back)."""
        if self._bar is not None:
            self._bar.update(rows)

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.close()
