"""A small, thread-safe progress bar on stderr, for the simulator and the demo's long steps.

On a terminal it redraws one line; elsewhere (CI logs) it prints a line every quarter, so logs
stay short. Nothing else: no dependency, no colour.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

_WIDTH = 30
_REDRAW_EVERY_S = 0.1


class Progress:
    """Counts work done out of ``total``; :meth:`advance` from any thread, :meth:`finish` once."""

    def __init__(
        self, label: str, total: int, stream: TextIO | None = None, show_rate: bool = True
    ) -> None:
        self.label, self.total, self.show_rate = label, total, show_rate
        self.stream = stream or sys.stderr
        self.done = 0
        self._interactive = self.stream.isatty()
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._last_draw = 0.0
        self._last_quarter = 0

    def advance(self, count: int = 1) -> None:
        with self._lock:
            self.done += count
            now = time.monotonic()
            if self._interactive and now - self._last_draw >= _REDRAW_EVERY_S:
                self._last_draw = now
                self.stream.write("\r" + self._line(now))
                self.stream.flush()
            elif not self._interactive and self.total:
                quarter = 4 * self.done // self.total
                if quarter > self._last_quarter and quarter < 4:
                    self._last_quarter = quarter
                    self.stream.write(self._line(now) + "\n")

    def finish(self) -> float:
        """Draw the final line; return the elapsed seconds."""
        now = time.monotonic()
        with self._lock:
            self.stream.write(("\r" if self._interactive else "") + self._line(now) + "\n")
            self.stream.flush()
        return now - self._started

    def _line(self, now: float) -> str:
        elapsed = max(now - self._started, 1e-9)
        share = self.done / self.total if self.total else 1.0
        filled = round(_WIDTH * share)
        rate = f" {self.done / elapsed:,.0f}/s" if self.show_rate else ""
        return (
            f"  {self.label} [{'#' * filled}{'.' * (_WIDTH - filled)}] "
            f"{self.done:,}/{self.total:,}{rate} {elapsed:.1f}s"
        )
