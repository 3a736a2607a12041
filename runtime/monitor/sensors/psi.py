"""Pressure stall information: /proc/pressure/{memory,cpu,io} and a cgroup's memory.pressure.

Format (kernel Documentation/accounting/psi.rst):
    some avg10=0.00 avg60=0.00 avg300=0.00 total=0
    full avg10=0.00 avg60=0.00 avg300=0.00 total=0
avg* are percentages of wall time some/all tasks were stalled; total is microseconds.
"""

from __future__ import annotations

from pathlib import Path

from .sysfs import read_text, under

Pressure = dict[str, dict[str, float]]  # {"some": {"avg10": .., "avg60": .., "avg300": .., "total": ..}, "full": {...}}


def parse_pressure(text: str) -> Pressure:
    out: Pressure = {}
    for line in text.splitlines():
        kind, *fields = line.split()
        if kind not in ("some", "full"):
            continue
        values: dict[str, float] = {}
        for field in fields:
            key, _, value = field.partition("=")
            try:
                values[key] = float(value)
            except ValueError:
                continue
        out[kind] = values
    return out


def read_pressure_file(path: Path) -> Pressure | None:
    text = read_text(path)
    return parse_pressure(text) if text else None


def read_pressure(root: str | Path, resource: str = "memory") -> Pressure | None:
    return read_pressure_file(under(root, f"/proc/pressure/{resource}"))
