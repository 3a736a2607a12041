"""The `[budget]` section of the daemon's config.

    [budget]
    memory_mb = 300          # soft: the variant loaded is one whose measured footprint fits it;
                             #   over it, caches and buffers are shed.  Default: none
    memory_hard_mb = 400     # hard: over it, the daemon exits 75 so systemd restarts it clean.
                             #   Default: memory_mb x 1.25 when memory_mb is set, else none
    power_w = 4.0            # mean power over power_window_s.  Default: none
    power_window_s = 30      # Default: 30
    power_scope = "board"    # "board": the whole board (a meter, else the CPU estimate);
                             # "process": this process's estimated draw above idle (shared machines). Default: "board"
    board = "auto"           # power profile for the estimate: auto (from /proc/device-tree/model),
                             #   pi-zero-2w, pi-3b+, pi-4b, pi-5, generic.  Default: "auto"
    temperature_c = 75       # hottest thermal zone; false turns it off.  Default: 75 (below the Pi
                             #   firmware's 80 °C throttle, so edgewatch slows down before the firmware halves the clock)
    min_fps = 1.0            # the rate the application needs: the inference rate is lowered down to this
                             #   before threads and a cheaper variant; below it only at the cheapest, then pause.  Default: 1
    ladder = true            # step along the bundle's variants (most accurate first); false: the rate is
                             #   the only knob.  Default: true
"""

from __future__ import annotations

from dataclasses import dataclass

from ..table import Table
from .sensors.power import SCOPES
from .sensors.power.estimate import PROFILES

HARD_OVER_SOFT = 1.25
DEFAULT_TEMPERATURE_C = 75.0


@dataclass(frozen=True)
class Budgets:
    memory_mb: float | None = None
    memory_hard_mb: float | None = None
    power_w: float | None = None
    power_window_s: float = 30.0
    power_scope: str = "board"
    board: str = "auto"
    temperature_c: float | None = DEFAULT_TEMPERATURE_C
    min_fps: float = 1.0
    ladder: bool = True

    def __post_init__(self) -> None:
        if self.memory_hard_mb is None and self.memory_mb is not None:
            object.__setattr__(self, "memory_hard_mb", self.memory_mb * HARD_OVER_SOFT)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def parse_budgets(t: Table) -> Budgets:
    memory_mb = t.number("memory_mb", None, gt=0)
    memory_hard_mb = t.number("memory_hard_mb", None, gt=0)
    if memory_mb is not None and memory_hard_mb is not None and memory_hard_mb <= memory_mb:
        raise t.error("memory_hard_mb", f"must be above memory_mb ({memory_mb:g}), got {memory_hard_mb:g}")
    if t.raw("temperature_c", None) is False:
        temperature_c = None
    else:
        temperature_c = t.number("temperature_c", DEFAULT_TEMPERATURE_C, ge=30, le=110)
    budgets = Budgets(
        memory_mb=memory_mb,
        memory_hard_mb=memory_hard_mb,
        power_w=t.number("power_w", None, gt=0),
        power_window_s=t.number("power_window_s", 30.0, ge=5, le=3600),
        power_scope=t.str("power_scope", "board", SCOPES),
        board=t.str("board", "auto", ("auto", *PROFILES)),
        temperature_c=temperature_c,
        min_fps=t.number("min_fps", 1.0, gt=0, le=120),
        ladder=t.bool("ladder", True),
    )
    t.done()
    return budgets
