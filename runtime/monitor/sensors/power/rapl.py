"""Intel RAPL through powercap: /sys/class/powercap/intel-rapl:<n>/{name,energy_uj,max_energy_range_uj}.

energy_uj is a counter that wraps at max_energy_range_uj; power is the energy between two reads
over the time between them. Top-level zones only (package-N, psys): subzones (core, uncore,
dram) are parts of a package. psys, where present, covers the whole platform and is used alone.
Since Linux 5.10 energy_uj is readable by root only (CVE-2020-8694); unreadable means absent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..sysfs import read_int, read_text, under
from .reading import PowerReading


@dataclass
class _Zone:
    folder: Path
    name: str
    max_range_uj: int
    last_uj: int | None = None


def energy_delta_uj(previous: int, current: int, max_range_uj: int) -> int:
    """Energy between two counter reads, across at most one wrap-around."""
    return current - previous if current >= previous else current + max_range_uj - previous


class RaplPower:
    def __init__(self, zones: list[_Zone]):
        self._zones = zones
        self._last_t: float | None = None
        self.source = "sensor:rapl/" + "+".join(z.name for z in zones)

    @classmethod
    def find(cls, root: str | Path) -> RaplPower | None:
        zones = []
        for folder in sorted(under(root, "/sys/class/powercap").glob("intel-rapl:*")):
            if folder.name.count(":") != 1:
                continue  # a subzone (intel-rapl:0:1)
            name = read_text(folder / "name") or folder.name
            max_range = read_int(folder / "max_energy_range_uj")
            if max_range and read_int(folder / "energy_uj") is not None:
                zones.append(_Zone(folder, name, max_range))
        psys = [z for z in zones if z.name.startswith("psys")]
        zones = psys or [z for z in zones if z.name.startswith("package")]
        return cls(zones) if zones else None

    def read(self, now: float) -> PowerReading | None:
        rails: dict[str, float] = {}
        dt = None if self._last_t is None else now - self._last_t
        for zone in self._zones:
            uj = read_int(zone.folder / "energy_uj")
            if uj is None:
                return None
            if zone.last_uj is not None and dt:
                rails[zone.name] = energy_delta_uj(zone.last_uj, uj, zone.max_range_uj) / 1e6 / dt
            zone.last_uj = uj
        self._last_t = now
        if len(rails) != len(self._zones):
            return None  # the first read primes the counters
        return PowerReading(sum(rails.values()), self.source, rails)
