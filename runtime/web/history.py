"""The last hour of the figures the page plots (fps, power, temperature, memory), in memory.

One sample every `interval_s` in fixed-size rings: an hour at 10 s is 360 points per figure,
whatever the uptime. Samples come from the daemon's status; the figures a status may lack (power
and temperature when no [budget] runs the resource monitor) from the board's sensors directly.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from ..monitor.readings import BoardSensors, Readings

FIGURES = ("fps", "power_w", "temperature_c", "rss_mb")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def figures_from_status(status: dict[str, Any]) -> dict[str, float | None]:
    """fps, power (W), temperature (°C) and RSS (MB) as the status reports them (None: not there)."""
    budget = status.get("budget") or {}
    power = budget.get("power") or {}
    return {
        "fps": _number(status.get("fps")),
        "power_w": _number(power.get("now_w")),
        "temperature_c": _number((budget.get("temperature") or {}).get("c")),
        "rss_mb": _number((budget.get("memory") or {}).get("rss_mb")),
    }


class History:
    def __init__(self, interval_s: float = 10.0, span_s: float = 3600.0):
        self.interval_s = interval_s
        self._lock = threading.Lock()  # guards the rings
        n = max(2, int(span_s / interval_s))
        self._times: deque[float] = deque(maxlen=n)
        self._values: dict[str, deque[float | None]] = {k: deque(maxlen=n) for k in FIGURES}

    def add(self, wall: float, figures: dict[str, float | None]) -> None:
        with self._lock:
            self._times.append(round(wall, 1))
            for key, ring in self._values.items():
                value = figures.get(key)
                ring.append(None if value is None else round(value, 3))

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {"interval_s": self.interval_s, "t": list(self._times), **{k: list(v) for k, v in self._values.items()}}


class FigureSampler:
    """Figures for one sample: the status's, with what it lacks read from the board's sensors
    (opened the first time they are needed, then kept)."""

    def __init__(self, status: Callable[[], dict[str, Any] | None], sensors_root: str = "/"):
        self._status = status
        self._root = sensors_root
        self._sensors: BoardSensors | None = None
        self.latest: dict[str, float | None] = dict.fromkeys(FIGURES)

    def sample(self, now_mono: float) -> dict[str, float | None]:
        status = self._status() or {}
        figures = figures_from_status(status)
        if figures["power_w"] is None or figures["temperature_c"] is None or figures["rss_mb"] is None:
            readings = self._read_sensors(now_mono)
            if readings is not None:
                hot = readings.hottest
                if figures["power_w"] is None and readings.power is not None:
                    figures["power_w"] = readings.power.watts
                if figures["temperature_c"] is None and hot is not None:
                    figures["temperature_c"] = hot.celsius
                if figures["rss_mb"] is None:
                    figures["rss_mb"] = readings.process.rss_mb
        self.latest = figures
        return figures

    def _read_sensors(self, now_mono: float) -> Readings | None:
        try:
            if self._sensors is None:
                self._sensors = BoardSensors(self._root)
            return self._sensors.read(now_mono)
        except Exception:  # noqa: BLE001 - a plot without a line beats a page without a server
            return None
