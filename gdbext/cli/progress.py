"""A one-line progress bar on a terminal (stderr); silent otherwise.  Ten
lines are not worth a dependency."""
from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, stream=None, enabled: bool | None = None):
        self.total, self.done, self.failed = total, 0, 0
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.started = time.monotonic()

    def update(self, ok: bool) -> None:
        self.done += 1
        self.failed += 0 if ok else 1
        if self.enabled:
            width = 30
            filled = width * self.done // max(self.total, 1)
            self.stream.write(f"\r  triage [{'#' * filled}{'.' * (width - filled)}] "
                              f"{self.done}/{self.total}  {self.failed} failed  "
                              f"{time.monotonic() - self.started:5.1f} s")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.done:
            self.stream.write("\n")
            self.stream.flush()
