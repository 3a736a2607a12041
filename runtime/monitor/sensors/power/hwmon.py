"""hwmon power meters: /sys/class/hwmon/hwmon*/.

Units (kernel Documentation/hwmon/sysfs-interface.rst): power*_input / power*_average in µW,
in*_input in mV, curr*_input in mA. Meters are read in order of preference per channel:
power*_average, power*_input, then in* x curr* (INA3221 has no power attribute; ina2xx has).

Only chips that measure a supply are read: a GPU (amdgpu power1_average) or a charger also exposes
power*, and adding those to a board figure would be wrong.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..sysfs import read_int, read_text, under
from .reading import PowerReading, from_rails

METER_PREFIXES = ("ina", "ltc2945", "power_meter")
_CHANNEL = re.compile(r"^(power|curr)(\d+)_(input|average)$")


def _label(folder: Path, kind: str, index: int, chip: str) -> str:
    return read_text(folder / f"{kind}{index}_label") or read_text(folder / f"in{index}_label") or f"{chip}.{kind}{index}"


def _rails(folder: Path, chip: str) -> dict[str, float]:
    names = {p.name for p in folder.iterdir()}
    power_idx = sorted({int(m.group(2)) for n in names if (m := _CHANNEL.match(n)) and m.group(1) == "power"})
    rails: dict[str, float] = {}
    for i in power_idx:
        micro = read_int(folder / f"power{i}_average")
        micro = micro if micro is not None else read_int(folder / f"power{i}_input")
        if micro is not None:
            rails[_label(folder, "power", i, chip)] = micro / 1e6
    if rails:
        return rails
    curr_idx = sorted({int(m.group(2)) for n in names if (m := _CHANNEL.match(n)) and m.group(1) == "curr"})
    for i in curr_idx:
        if chip == "ina3221" and i > 3:
            continue  # curr4 is the summed shunt channel (a sum of the three above)
        label = read_text(folder / f"in{i}_label")
        if label == "NC" or read_int(folder / f"in{i}_enable") == 0:
            continue  # not connected / disabled channel
        milli_v, milli_a = read_int(folder / f"in{i}_input"), read_int(folder / f"curr{i}_input")
        if milli_v is not None and milli_a is not None:
            rails[label or f"{chip}.in{i}"] = milli_v * milli_a / 1e6
    return rails


class HwmonPower:
    def __init__(self, meters: list[tuple[Path, str]]):
        self._meters = meters
        self.source = "sensor:hwmon/" + "+".join(f"{chip}({folder.name})" for folder, chip in meters)

    @classmethod
    def find(cls, root: str | Path) -> HwmonPower | None:
        base = under(root, "/sys/class/hwmon")
        meters = []
        for folder in sorted(base.glob("hwmon*"), key=lambda p: int(p.name[5:] or 0)):
            chip = read_text(folder / "name") or ""
            if chip.startswith(METER_PREFIXES) and _rails(folder, chip):
                meters.append((folder, chip))
        return cls(meters) if meters else None

    def read(self, now: float) -> PowerReading | None:
        rails: dict[str, float] = {}
        for folder, chip in self._meters:
            rails.update(_rails(folder, chip))
        return from_rails(self.source, rails)
