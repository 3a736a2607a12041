"""CPU clocks per cpufreq policy: /sys/devices/system/cpu/cpufreq/policy*/ (kHz)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .sysfs import read_int, read_text, under


@dataclass(frozen=True)
class Policy:
    name: str  # policy0
    cpus: str  # "0-3"
    cur_mhz: float
    max_mhz: float | None  # the hardware maximum (cpuinfo_max_freq)
    limit_mhz: float | None  # the current cap (scaling_max_freq), lowered by thermal/firmware limits
    governor: str | None


def read_policies(root: str | Path) -> list[Policy]:
    out = []
    base = under(root, "/sys/devices/system/cpu/cpufreq")
    for folder in sorted(base.glob("policy*"), key=lambda p: int(p.name[6:] or 0)):
        cur = read_int(folder / "scaling_cur_freq")
        if cur is None:
            continue
        hw_max = read_int(folder / "cpuinfo_max_freq")
        limit = read_int(folder / "scaling_max_freq")
        out.append(
            Policy(
                name=folder.name,
                cpus=read_text(folder / "related_cpus") or read_text(folder / "affected_cpus") or "",
                cur_mhz=cur / 1000,
                max_mhz=hw_max / 1000 if hw_max else None,
                limit_mhz=limit / 1000 if limit else None,
                governor=read_text(folder / "scaling_governor"),
            )
        )
    return out
