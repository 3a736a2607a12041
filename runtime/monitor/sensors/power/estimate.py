"""Power estimated from CPU use when the board has no meter: idle + utilisation x (full - idle).

Board profiles come from /proc/device-tree/model. The figures are public bench measurements of
whole boards at 5 V (no peripherals, Ethernet up), rounded; they are a model, and every figure
built on them says `estimate:`.

Two scopes:
- `board`: the whole board, from the utilisation of all CPUs (/proc/stat). Right on a board that
  runs edgewatch and little else.
- `process`: this process's own draw above idle, from its own CPU time deltas / cores. Right on a
  shared machine, where other work must not count against our budget.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from ..sysfs import read_text, under
from .reading import PowerReading


@dataclass(frozen=True)
class BoardProfile:
    key: str
    name: str
    idle_w: float
    full_w: float  # all cores busy (stress-ng / similar)
    basis: str


PROFILES = {
    p.key: p
    for p in (
        BoardProfile("pi-zero-2w", "Raspberry Pi Zero 2 W", 0.6, 3.0, "about 120 mA idle, 600 mA with 4 cores busy"),
        BoardProfile("pi-3b+", "Raspberry Pi 3 Model B+", 1.9, 5.1, "about 380 mA idle, 1 A under stress"),
        BoardProfile("pi-4b", "Raspberry Pi 4 Model B", 2.7, 6.4, "about 2.7 W idle, 6.4 W at full CPU load"),
        BoardProfile("pi-5", "Raspberry Pi 5", 2.8, 9.7, "about 2.8 W idle, 9.7 W under stress"),
        BoardProfile("generic", "unrecognised board", 2.5, 7.0, "a guess for a 4-core ARM board; set budget.board"),
    )
}

# Substrings of /proc/device-tree/model, first match wins (Pi 400 and CM4 share the Pi 4's SoC).
_MODELS = (
    ("Raspberry Pi 5", "pi-5"),
    ("Compute Module 5", "pi-5"),
    ("Raspberry Pi 4", "pi-4b"),
    ("Raspberry Pi 400", "pi-4b"),
    ("Compute Module 4", "pi-4b"),
    ("Raspberry Pi Zero 2", "pi-zero-2w"),
    ("Raspberry Pi 3", "pi-3b+"),
)


def board_model(root: str | Path) -> str | None:
    text = read_text(under(root, "/proc/device-tree/model"))
    return text.rstrip("\x00").strip() if text else None


def detect_profile(root: str | Path) -> BoardProfile:
    model = board_model(root) or ""
    for needle, key in _MODELS:
        if needle in model:
            return PROFILES[key]
    return PROFILES["generic"]


def cpu_count(root: str | Path) -> int:
    stat = read_text(under(root, "/proc/stat")) or ""
    n = sum(1 for line in stat.splitlines() if line.startswith("cpu") and line[3:4].isdigit())
    return n or psutil.cpu_count() or 1


class SystemCpu:
    """Share of all CPUs busy since the last read, from the aggregate line of /proc/stat."""

    def __init__(self, root: str | Path):
        self._path = under(root, "/proc/stat")
        self._last: tuple[int, int] | None = None

    def read(self, now: float) -> float | None:
        line = (read_text(self._path) or "").splitlines()[:1]
        if not line or not line[0].startswith("cpu "):
            return None
        # user nice system idle iowait irq softirq steal (guest is already inside user)
        ticks = [int(v) for v in line[0].split()[1:9]]
        total, idle = sum(ticks), ticks[3] + ticks[4]
        last, self._last = self._last, (total, idle)
        if last is None or total == last[0]:
            return None
        return min(1.0, max(0.0, 1 - (idle - last[1]) / (total - last[0])))


class ProcessCpu:
    """Share of all CPUs a process used since the last read: CPU time deltas / wall time / cores.

    Our own process is timed with CLOCK_PROCESS_CPUTIME_ID (nanoseconds, all threads); another
    with psutil cpu_times, whose 10 ms ticks make a 1 s figure jump in steps of 1% of a core.
    """

    def __init__(self, cores: int, pid: int | None = None):
        self._proc = psutil.Process(pid)
        self._own = pid is None or pid == os.getpid()
        self._cores = cores
        self._last: tuple[float, float] | None = None

    def _used(self) -> float:
        if self._own:
            return time.process_time()
        times = self._proc.cpu_times()
        return times.user + times.system

    def read(self, now: float) -> float | None:
        used = self._used()
        last, self._last = self._last, (now, used)
        if last is None or now <= last[0]:
            return None
        return min(1.0, max(0.0, (used - last[1]) / ((now - last[0]) * self._cores)))


class EstimatedPower:
    def __init__(self, profile: BoardProfile, cpu: SystemCpu | ProcessCpu, scope: str):
        self.profile = profile
        self._cpu = cpu
        self.scope = scope
        self.baseline_w = profile.idle_w if scope == "board" else 0.0
        what = "system cpu" if scope == "board" else "process cpu, above idle"
        self.source = f"estimate:{profile.key}-profile({what})"

    def read(self, now: float) -> PowerReading | None:
        share = self._cpu.read(now)
        if share is None:
            return None
        dynamic = share * (self.profile.full_w - self.profile.idle_w)
        return PowerReading(self.baseline_w + dynamic, self.source, {"idle": self.baseline_w, "cpu": dynamic})
