"""Running Raspberry Pi's `vcgencmd` (a firmware mailbox call through a process), and sampling it
no faster than it is cheap to.

The path is configurable so tests (and odd installs) can point it elsewhere; by default it is
`<root>/usr/bin/vcgencmd`, and on the real root also anything named vcgencmd on PATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Callable, Generic, TypeVar

from .sysfs import under

T = TypeVar("T")


class Vcgencmd:
    def __init__(self, path: str | Path, timeout_s: float = 2.0):
        self.path = str(path)
        self.timeout_s = timeout_s

    @classmethod
    def find(cls, root: str | Path, path: str | Path | None = None) -> Vcgencmd | None:
        if path is not None:
            return cls(path) if os.access(path, os.X_OK) else None
        candidate = under(root, "/usr/bin/vcgencmd")
        if os.access(candidate, os.X_OK):
            return cls(candidate)
        found = shutil.which("vcgencmd") if Path(root) == Path("/") else None
        return cls(found) if found else None

    def run(self, *args: str) -> str | None:
        """Its stdout, or None when it fails (no firmware interface, a timeout, an unknown command)."""
        try:
            done = subprocess.run([self.path, *args], capture_output=True, text=True, timeout=self.timeout_s, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        # Unknown commands print `error=2 error_msg="Command not registered"` (exit status varies by version).
        if done.returncode != 0 or done.stdout.startswith("error="):
            return None
        return done.stdout


class Sampled(Generic[T]):
    """A value re-read at most every max(min_interval_s, cost / max_share) seconds.

    max_share = 0.01: a call that takes 20 ms is repeated at most every 2 s, so the sensor costs at
    most 1% of wall time however slow the firmware answers.
    """

    def __init__(self, fetch: Callable[[], T], min_interval_s: float, max_share: float = 0.01):
        self._fetch = fetch
        self._min_interval_s = min_interval_s
        self._max_share = max_share
        self._at: float | None = None
        self._interval_s = min_interval_s
        self.value: T | None = None
        self.cost_s: float | None = None

    def get(self, now: float) -> T | None:
        if self._at is None or now - self._at >= self._interval_s:
            start = time.perf_counter()
            self.value = self._fetch()
            self.cost_s = time.perf_counter() - start
            self._at = now
            self._interval_s = max(self._min_interval_s, self.cost_s / self._max_share)
        return self.value

    @property
    def interval_s(self) -> float:
        return self._interval_s
