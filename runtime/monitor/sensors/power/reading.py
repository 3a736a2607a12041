"""What every power source returns, and the rule for adding rails up into a board figure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

# Rails that already carry the whole module's input (Jetson's INA3221 channel 0: VDD_IN on TX1/TX2/
# Xavier NX/Orin, POM_5V_IN on Nano). The other channels are branches of it: adding them counts twice.
TOTAL_RAILS = ("VDD_IN", "POM_5V_IN", "VIN_SYS_5V0", "5V_IN")


@dataclass(frozen=True)
class PowerReading:
    watts: float
    source: str  # "sensor:hwmon/ina219(hwmon0)", "estimate:pi4-profile(system cpu)" ...
    rails: dict[str, float] = field(default_factory=dict)  # the parts, in W, for people reading the figure


class PowerSource(Protocol):
    source: str

    def read(self, now: float) -> PowerReading | None:
        """The current figure, or None when there is none yet (a counter needs two reads)."""


def from_rails(source: str, rails: dict[str, float]) -> PowerReading | None:
    """The board figure from named rails: a total-input rail alone if there is one (named in the
    source), else the sum."""
    if not rails:
        return None
    for name, watts in rails.items():
        if name.upper() in TOTAL_RAILS:
            return PowerReading(watts, f"{source}/{name}", rails)
    return PowerReading(sum(rails.values()), source, rails)
