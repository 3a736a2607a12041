"""The budget controller with a motion-gated pipeline, in the deterministic plant of
tests/monitor_plant.py: busy minutes (motion, every frame wanted) and empty ones (one frame per
keep-alive). A power budget that only busy periods exceed is held from the start of each busy
period, and nothing is cut while nothing moves."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from monitor_plant import Plant, person_plant
from runtime.config import Budgets
from runtime.health import MotionHealth
from runtime.monitor.monitor import ResourceMonitor

KEEPALIVE_FPS = 0.2


@dataclass
class GatedPlant(Plant):
    """The plant behind a motion gate: when the scene is busy the pipeline wants every frame (up to
    the rate limit and the model's speed); when it is empty, one frame per keep-alive."""

    busy: bool = True
    report_motion: bool = True  # False: a pipeline whose health says nothing of motion (as before the gate)
    recent_busy: list[bool] = field(default_factory=list)

    def fps(self) -> float:
        full = super().fps()
        return full if self.busy or self.paused else min(full, KEEPALIVE_FPS)

    def advance(self, seconds: float = 1.0) -> None:
        super().advance(seconds)
        self.recent_busy = (self.recent_busy + [self.busy])[-5:]

    def health(self):
        h = super().health()
        if not self.report_motion:
            return h
        active = sum(self.recent_busy) / len(self.recent_busy) if self.recent_busy else float(self.busy)
        return replace(h, motion=MotionHealth(enabled=True, state="watching", active=active))


def run(plant: GatedPlant, schedule: list[tuple[bool, int]], budget_w: float, tmp_path) -> list[tuple[bool, float, float]]:
    """Tick the monitor once a simulated second through `schedule` ((busy, seconds), ...);
    returns (busy, power, fps) per second."""
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    monitor = ResourceMonitor(Budgets(power_w=budget_w, temperature_c=None), plant, lambda *a: None, root,
                              variants=plant.bundle_variants(), max_threads=4, power=plant, clock=plant.clock)
    out = []
    for busy, seconds in schedule:
        plant.busy = busy
        for _ in range(seconds):
            plant.advance()
            monitor.tick()
            out.append((busy, plant.power(), plant.fps()))
    return out


SCHEDULE = [(True, 60), (False, 120), (True, 60), (False, 120), (True, 60)]
BUDGET_W = 3.5  # busy and unlimited: 4.19 W; empty: 2.73 W


def test_a_budget_only_busy_periods_exceed_is_held_without_cutting_anything_when_empty(tmp_path):
    plant = GatedPlant(**{**person_plant().__dict__, "source_fps": 10.0, "changes": []})
    seconds = run(plant, SCHEDULE, BUDGET_W, tmp_path)
    busy_periods = [seconds[180:240], seconds[360:420]]  # the second and third
    for period in busy_periods:
        powers = [p for _, p, _ in period]
        assert max(powers) <= BUDGET_W, powers[:10]  # held from the first second: the limit was kept
        assert sum(powers) / len(powers) >= 0.85 * BUDGET_W  # and not by more than needed
    empty = seconds[60 + 15:180] + seconds[240 + 15:360]
    assert all(fps == pytest.approx(KEEPALIVE_FPS) for _, _, fps in empty)  # the keep-alive is never cut
    # the rate limit is the only knob; it is never lifted, and nothing moves once a control period
    # (10 s) and the 5 s of the gate's figure have passed in an empty part
    assert {knob for _, knob, _ in plant.changes} == {"rate_limit"}
    assert all(value is not None for _, _, value in plant.changes)
    quiet = [(t, value) for t, _, value in plant.changes if any(start + 15 < t <= end for start, end in ((60, 180), (240, 360)))]
    assert not quiet, plant.changes
    assert plant.threads == 4 and plant.variant == "float32"


def test_without_motion_figures_the_limit_is_dropped_in_every_empty_period(tmp_path):
    # what the gate's `active` figure is for: a controller that only sees the rate reached takes
    # the quiet minutes for headroom, lifts the limit, and each busy period starts over budget
    plant = GatedPlant(**{**person_plant().__dict__, "source_fps": 10.0, "changes": []}, report_motion=False)
    seconds = run(plant, SCHEDULE, BUDGET_W, tmp_path)
    lifted = [t for t, knob, value in plant.changes if knob == "rate_limit" and value is None]
    assert any(60 < t <= 180 for t in lifted) and any(240 < t <= 360 for t in lifted)
    assert max(p for _, p, _ in seconds[180:240]) > BUDGET_W
