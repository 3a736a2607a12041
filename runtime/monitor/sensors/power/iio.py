"""The older Jetson INA3221 layout (L4T 32 and before, NVIDIA's own `ina3221x` IIO driver):

    /sys/bus/i2c/drivers/ina3221x/<bus-addr>/iio:device<N>/rail_name_<c>      (c = 0..2)
                                                       in_power<c>_input      mW
                                                       in_current<c>_input    mA
                                                       in_voltage<c>_input    mV
"""

from __future__ import annotations

from pathlib import Path

from ..sysfs import read_int, read_text, under
from .reading import PowerReading, from_rails


def _rails(device: Path) -> dict[str, float]:
    rails = {}
    for c in range(3):
        name = read_text(device / f"rail_name_{c}")
        if not name:
            continue  # channel not connected
        milli_w = read_int(device / f"in_power{c}_input")
        if milli_w is None:
            milli_v, milli_a = read_int(device / f"in_voltage{c}_input"), read_int(device / f"in_current{c}_input")
            if milli_v is None or milli_a is None:
                continue
            milli_w = milli_v * milli_a / 1000
        rails[name] = milli_w / 1000
    return rails


class IioIna3221Power:
    def __init__(self, devices: list[Path]):
        self._devices = devices
        self.source = "sensor:iio/ina3221x(" + "+".join(d.parent.name for d in devices) + ")"

    @classmethod
    def find(cls, root: str | Path) -> IioIna3221Power | None:
        devices = [d for d in sorted(under(root, "/sys/bus/i2c/drivers/ina3221x").glob("*/iio:device*")) if _rails(d)]
        return cls(devices) if devices else None

    def read(self, now: float) -> PowerReading | None:
        rails: dict[str, float] = {}
        for device in self._devices:
            rails.update(_rails(device))
        return from_rails(self.source, rails)
