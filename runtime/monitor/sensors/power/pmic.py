"""Raspberry Pi 5 PMIC rails: `vcgencmd pmic_read_adc`, one rail per line:

      VDD_CORE_A current(7)=2.51000000A
      VDD_CORE_V volt(15)=0.84000000V
       EXT5V_V volt(24)=5.12591600V        (a voltage with no current: not a rail we can power)

Power is the sum of V x I over rails that have both. It covers what the PMIC supplies (SoC, RAM,
3V3/1V8 rails), not USB peripherals or the 5 V input's own losses, so it reads below a USB meter.
"""

from __future__ import annotations

import re

from ..vcgencmd import Sampled, Vcgencmd
from .reading import PowerReading

_LINE = re.compile(r"^\s*(\S+)_([AV])\s+(?:current|volt)\(\d+\)=([-+0-9.eE]+)[AV]\s*$")
# Beyond these a reading is an ADC glitch, not a rail of a 5 V / 5 A board.
MAX_VOLTS, MAX_AMPS, MAX_RAIL_WATTS = 6.0, 10.0, 27.0

SOURCE = "sensor:pmic(vcgencmd pmic_read_adc)"


def parse_pmic(text: str) -> dict[str, float]:
    """Rail name -> W, implausible rails left out."""
    volts: dict[str, float] = {}
    amps: dict[str, float] = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if m:
            (amps if m.group(2) == "A" else volts)[m.group(1)] = float(m.group(3))
    rails = {}
    for name, a in amps.items():
        v = volts.get(name)
        if v is None or not 0 <= v <= MAX_VOLTS or not 0 <= a <= MAX_AMPS or v * a > MAX_RAIL_WATTS:
            continue
        rails[name] = v * a
    return rails


class PmicPower:
    """Sampled at most every 2 s and at most 1% of wall time (each call is a process and a mailbox round trip)."""

    source = SOURCE

    def __init__(self, vcgencmd: Vcgencmd, min_interval_s: float = 2.0):
        self._sampled = Sampled(lambda: parse_pmic(vcgencmd.run("pmic_read_adc") or ""), min_interval_s)

    @classmethod
    def find(cls, vcgencmd: Vcgencmd | None) -> PmicPower | None:
        if vcgencmd is None or not parse_pmic(vcgencmd.run("pmic_read_adc") or ""):
            return None  # not a Pi 5 (older firmware answers "Command not registered")
        return cls(vcgencmd)

    def read(self, now: float) -> PowerReading | None:
        rails = self._sampled.get(now)
        return PowerReading(sum(rails.values()), self.source, rails) if rails else None
