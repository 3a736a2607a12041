"""All the sensors of one board read together: what `ResourceMonitor.tick` and `edgewatch monitor` see.

Every figure carries its source ("sensor:hwmon/ina219(hwmon0)", "estimate:pi-4b-profile(system cpu)").
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .sensors.cgroup import CgroupMemory, find_cgroup, read_cgroup_memory
from .sensors.cpufreq import Policy, read_policies
from .sensors.memory import ProcessMemory, ProcessMemoryReader, SystemMemory, read_system_memory
from .sensors.power import PowerReading, PowerSource, find_power
from .sensors.power.estimate import board_model
from .sensors.psi import Pressure, read_pressure
from .sensors.thermal import Zone, hottest, read_zones
from .sensors.throttling import Throttling, parse_throttled
from .sensors.vcgencmd import Sampled, Vcgencmd


@dataclass
class Readings:
    now: float
    power: PowerReading | None
    power_source: str  # what the power figure comes from, even before it has a first figure
    power_mean_w: float | None  # over the window
    power_window_s: float
    process: ProcessMemory
    system: SystemMemory | None
    cgroup: CgroupMemory | None
    memory_pressure: Pressure | None
    zones: list[Zone] = field(default_factory=list)
    policies: list[Policy] = field(default_factory=list)
    throttling: Throttling | None = None

    @property
    def hottest(self) -> Zone | None:
        return hottest(self.zones)

    def as_dict(self) -> dict[str, Any]:
        hot = self.hottest
        return {
            "power": {
                "now_w": _r(self.power.watts if self.power else None),
                "mean_w": _r(self.power_mean_w),
                "window_s": self.power_window_s,
                "source": self.power.source if self.power else self.power_source,
                "rails": {k: _r(v) for k, v in self.power.rails.items()} if self.power else {},
            },
            "memory": {
                "rss_mb": _r(self.process.rss_mb, 1),
                "uss_mb": _r(self.process.uss_mb, 1),
                "pss_mb": _r(self.process.pss_mb, 1),
                "source": self.process.source,
                "available_mb": _r(self.system.available_mb, 0) if self.system else None,
                "total_mb": _r(self.system.total_mb, 0) if self.system else None,
                "psi": self.memory_pressure,
                "cgroup": None
                if self.cgroup is None
                else {
                    "path": self.cgroup.path,
                    "current_mb": _r(self.cgroup.current_mb, 1),
                    "high_mb": _r(self.cgroup.high_mb, 1),
                    "max_mb": _r(self.cgroup.max_mb, 1),
                    "events": self.cgroup.events,
                    "psi": self.cgroup.pressure,
                },
            },
            "temperature": {
                "c": hot.celsius if hot else None,
                "source": f"sensor:thermal/{hot.name}({hot.type})" if hot else None,
                "zones": {f"{z.name}({z.type})": z.celsius for z in self.zones},
            },
            "cpufreq": [{"policy": p.name, "cur_mhz": p.cur_mhz, "max_mhz": p.max_mhz, "limit_mhz": p.limit_mhz} for p in self.policies],
            "throttling": None
            if self.throttling is None
            else {"raw": hex(self.throttling.raw), "now": list(self.throttling.now), "since_boot": list(self.throttling.since_boot),
                  "source": self.throttling.source},
        }


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


class BoardSensors:
    def __init__(
        self,
        root: str | Path = "/",
        *,
        power_scope: str = "board",
        board: str = "auto",
        power_window_s: float = 30.0,
        power: PowerSource | None = None,
        vcgencmd: str | Path | None = None,
        pid: int | None = None,
    ):
        self.root = Path(root)
        self.vcgencmd = Vcgencmd.find(root, vcgencmd)
        self.power_source: PowerSource = power or find_power(root, power_scope, board, self.vcgencmd, pid)
        self.model = board_model(root)
        self._memory = ProcessMemoryReader(pid)
        self._cgroup = find_cgroup(root)
        vc = self.vcgencmd
        self._throttled = Sampled(lambda: parse_throttled(vc.run("get_throttled") or ""), 5.0) if vc else None
        self.power_window_s = power_window_s
        self._window: deque[tuple[float, float]] = deque()

    def read(self, now: float) -> Readings:
        power = self.power_source.read(now)
        if power is not None:
            self._window.append((now, power.watts))
        while self._window and self._window[0][0] <= now - self.power_window_s:
            self._window.popleft()
        mean = sum(w for _, w in self._window) / len(self._window) if self._window else None
        return Readings(
            now=now,
            power=power,
            power_source=self.power_source.source,
            power_mean_w=mean,
            power_window_s=self.power_window_s,
            process=self._memory.read(now),
            system=read_system_memory(self.root),
            cgroup=read_cgroup_memory(*self._cgroup) if self._cgroup else None,
            memory_pressure=read_pressure(self.root, "memory"),
            zones=read_zones(self.root),
            policies=read_policies(self.root),
            throttling=self._throttled.get(now) if self._throttled else None,
        )
