"""Power, best source first: hwmon meters, Jetson's older IIO INA3221, the Pi 5 PMIC, Intel RAPL;
otherwise an estimate from CPU use (estimate.py). `find_power` picks one."""

from __future__ import annotations

from pathlib import Path

from ....config.sections import POWER_SCOPES as SCOPES
from ..vcgencmd import Vcgencmd
from .estimate import PROFILES, EstimatedPower, ProcessCpu, SystemCpu, cpu_count, detect_profile
from .hwmon import HwmonPower
from .iio import IioIna3221Power
from .pmic import PmicPower
from .rapl import RaplPower
from .reading import PowerReading, PowerSource

__all__ = ["PowerReading", "PowerSource", "find_power", "SCOPES"]


def find_power(
    root: str | Path = "/",
    scope: str = "board",
    profile: str = "auto",
    vcgencmd: Vcgencmd | None = None,
    pid: int | None = None,
) -> PowerSource:
    """A meter for the board scope when there is one, else the CPU estimate.

    The process scope is always the estimate: a meter sees the whole board and cannot tell our
    share from anybody else's.
    """
    if scope == "board":
        for found in (HwmonPower.find(root), IioIna3221Power.find(root), PmicPower.find(vcgencmd), RaplPower.find(root)):
            if found is not None:
                return found
    board = detect_profile(root) if profile == "auto" else PROFILES[profile]
    cpu = SystemCpu(root) if scope == "board" else ProcessCpu(cpu_count(root), pid)
    return EstimatedPower(board, cpu, scope)
