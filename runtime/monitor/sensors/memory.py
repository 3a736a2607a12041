"""Memory: this process's RSS (every tick), its USS/PSS (occasionally: they walk the page tables),
and the board's MemAvailable from /proc/meminfo."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import psutil

from .sysfs import read_keyed, under

MB = 1024 * 1024


@dataclass(frozen=True)
class ProcessMemory:
    rss_mb: float
    uss_mb: float | None  # None until the first full read
    pss_mb: float | None
    source: str


class ProcessMemoryReader:
    """RSS from psutil each call; USS/PSS at most every `full_every_s` seconds (smaps costs milliseconds)."""

    def __init__(self, pid: int | None = None, full_every_s: float = 30.0):
        self._proc = psutil.Process(pid)
        self._full_every_s = full_every_s
        self._full_at: float | None = None
        self._uss: float | None = None
        self._pss: float | None = None

    def read(self, now: float) -> ProcessMemory:
        rss = self._proc.memory_info().rss / MB
        if self._full_at is None or now - self._full_at >= self._full_every_s:
            self._full_at = now
            try:
                full = self._proc.memory_full_info()
                self._uss = full.uss / MB
                self._pss = getattr(full, "pss", 0) / MB or None  # pss is Linux-only
            except (psutil.AccessDenied, psutil.ZombieProcess):
                self._uss = self._pss = None
        return ProcessMemory(rss, self._uss, self._pss, f"sensor:psutil/pid {self._proc.pid}")


@dataclass(frozen=True)
class SystemMemory:
    total_mb: float
    available_mb: float
    source: str = "sensor:/proc/meminfo"


def read_system_memory(root: str | Path) -> SystemMemory | None:
    info = read_keyed(under(root, "/proc/meminfo"))  # values in kB
    if "MemTotal" not in info or "MemAvailable" not in info:
        return None
    return SystemMemory(info["MemTotal"] / 1024, info["MemAvailable"] / 1024)
