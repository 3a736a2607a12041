"""Progress that reads well on a terminal and in a log: a bar on a TTY, plain lines otherwise.

Over ssh without a TTY (or under nohup, or in CI) a carriage-return bar turns into one unreadable
line, so there the same steps print as timestamped lines, at most one every `interval` seconds
within a step, and always at a step's start and end.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, stream: TextIO | None = None, interval: float = 5.0, enabled: bool = True):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.interval = interval
        self.enabled = enabled
        self._start = time.monotonic()
        self._step = ""
        self._total = 0
        self._last = 0.0

    def _write(self, text: str) -> None:
        # Best effort: a dropped ssh session (stderr gone, SIGHUP ignored under nohup) must not
        # abort a conversion that would otherwise complete.
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            self.enabled = False

    def _elapsed(self) -> str:
        return f"{time.monotonic() - self._start:6.1f}s"

    def step(self, name: str, total: int = 0) -> None:
        """Start a step with `total` units of work (0: a single unit)."""
        self._end_bar()
        self._step, self._total = name, total
        self._last = time.monotonic()
        if self.enabled and not (self.tty and total):
            self._write(f"[{self._elapsed()}] {name}\n")
        self.update(0)

    def update(self, done: int, note: str = "") -> None:
        """`note`: what else the bar shows (e.g. a training loss)."""
        if not self.enabled or not self._total:
            return
        now = time.monotonic()
        note = f" {note}" if note else ""
        if self.tty:
            width = 30
            fill = int(width * done / self._total)
            self._write(f"\r{self._step} [{'#' * fill}{'.' * (width - fill)}] {done}/{self._total} {self._elapsed()}{note}")
        elif done == self._total or now - self._last >= self.interval:
            self._last = now
            self._write(f"[{self._elapsed()}] {self._step}: {done}/{self._total}{note}\n")

    def _end_bar(self) -> None:
        if self.enabled and self.tty and self._total:
            self._write("\n")
        self._total = 0

    def done(self, message: str = "") -> None:
        self._end_bar()
        if self.enabled and message:
            self._write(f"[{self._elapsed()}] {message}\n")
