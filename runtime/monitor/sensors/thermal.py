"""Thermal zones: /sys/class/thermal/thermal_zone*/{type,temp}, temp in millidegrees Celsius."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .sysfs import read_int, read_text, under

# Jetson's PMIC-Die zone reports a fixed 100 °C (a trip point, not a reading); it would pin the
# hottest-zone figure and hold every budget down.
_NOT_READINGS = ("pmic-die",)


@dataclass(frozen=True)
class Zone:
    name: str  # thermal_zone0
    type: str  # cpu-thermal, CPU-therm, x86_pkg_temp ...
    celsius: float


def read_zones(root: str | Path) -> list[Zone]:
    zones = []
    base = under(root, "/sys/class/thermal")
    for folder in sorted(base.glob("thermal_zone*"), key=lambda p: int(p.name[12:] or 0)):
        milli = read_int(folder / "temp")
        kind = read_text(folder / "type") or folder.name
        # -40..150 °C: outside is a disabled or broken zone (some report -274000 or 0x7fffffff).
        if milli is None or not -40_000 <= milli <= 150_000 or kind.lower() in _NOT_READINGS:
            continue
        zones.append(Zone(folder.name, kind, milli / 1000.0))
    return zones


def hottest(zones: list[Zone]) -> Zone | None:
    return max(zones, key=lambda z: z.celsius, default=None)
