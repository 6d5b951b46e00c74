"""Progress on stderr: rows done of the rows the metadata declares, rate and ETA (tqdm); and what
the user should hear while the server is unreachable.

tqdm is imported only when the bar is shown.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Never, TextIO

if TYPE_CHECKING:
    from types import TracebackType

    from tqdm import tqdm

    from export_tally.transport.retry import OutageEvent


class Progress:
    """A progress bar over `total` rows, shown only when `enabled`; a context manager."""

    def __init__(self, total: int, label: str, stream: TextIO, enabled: bool) -> None:
        self._stream = stream
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

    def status(self, text: str) -> None:
        """Show `text` after the bar ("" clears it)."""
        if self._bar is not None:
            self._bar.set_postfix_str(text)

    def say(self, line: str) -> None:
        """Print a line on the bar's stream without breaking the bar."""
        if self._bar is not None:
            self._bar.write(line, file=self._stream)
        else:
            print(line, file=self._stream)

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


def clock(moment: float) -> str:
    """A time of day as the user reads it: local time, to the second."""
    return time.strftime("%H:%M:%S", time.localtime(moment))


class OutageNotice:
    """Says once that the server became unreachable and once that it answers again, however many
    workers (and the parent's own requests) report the same outage; shows it on the bar too.

    Call it with each OutageEvent. Lines go to `stream` after `prefix`, around any bar on it.
    """

    def __init__(self, stream: TextIO, prefix: str, max_outage: float) -> None:
        self.stream = stream
        self.prefix = prefix
        self.max_outage = max_outage
        self.bar: Progress | None = None
        self.down_since: float | None = None
        self.back_at = float("-inf")

    def __call__(self, event: OutageEvent) -> None:
        if event.back is None:
            if self.down_since is not None or event.since < self.back_at:
                return  # said already, or news of an outage that is over
            self.down_since = event.since
            self._tell(
                f"server unreachable since {clock(event.since)}; "
                f"retrying for up to {self.max_outage:g} s",
                f"server unreachable since {clock(event.since)}",
            )
        elif self.down_since is not None:
            gone = event.back - self.down_since
            self.down_since = None
            self.back_at = event.back
            self._tell(f"server back at {clock(event.back)}, after {gone:.0f} s unreachable", "")

    def _tell(self, line: str, status: str) -> None:
        if self.bar is None:
            print(self.prefix + line, file=self.stream)
            return
        self.bar.say(self.prefix + line)
        self.bar.status(status)
