"""The budget controller and ResourceMonitor in a deterministic simulated plant (tests/monitor_plant.py):
power = idle + fps * energy(variant, threads). Sensors other than power read an empty root or a
fixture tree."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from monitor_plant import Plant, PlantVariant, person_plant
from runtime import exitcodes
from runtime.config import Budgets
from runtime.monitor.monitor import MemoryHardLimit, ResourceMonitor
from runtime.monitor.variants import VariantInfo, pick_variant, step_down_order

pytestmark = pytest.mark.board  # runs on the emulated arm64 root too (deploy/arm64/check.py)

FIXTURES = Path(__file__).parent / "fixtures" / "sysfs"


class Run:
    """A plant, a monitor ticking it once a simulated second, and the event log it writes."""

    def __init__(self, plant: Plant, budgets: Budgets, root: Path, noise: float = 0.0, noise_hold_s: int = 1,
                 seed: int = 7, **kw):
        """`noise`: readings off by up to that share, uniformly; a new draw every `noise_hold_s`
        simulated seconds (a shared machine's load drifts over tens of seconds, not per reading)."""
        self.plant = plant
        self.events: list[tuple[float, str, str, dict]] = []
        self.powers: list[float] = []
        self.hard: list[str] = []
        if noise:
            rng, exact, drawn = random.Random(seed), plant.power, {}

            def noisy() -> float:
                slot = int(plant.now // noise_hold_s)
                if slot not in drawn:
                    drawn.clear()
                    drawn[slot] = 1 + rng.uniform(-noise, noise)
                return exact() * drawn[slot]

            plant.power = noisy
        kw.setdefault("on_hard_limit", self.hard.append)
        self.monitor = ResourceMonitor(
            budgets,
            plant,
            lambda kind, message, detail: self.events.append((plant.now, kind, message, detail)),
            root,
            variants=plant.bundle_variants(),
            max_threads=4,
            power=plant,
            clock=plant.clock,
            **kw,
        )

    def seconds(self, n: int) -> None:
        for _ in range(n):
            self.plant.advance()
            self.monitor.tick()
            self.powers.append(self.plant.power())

    def mean_power(self, last_s: int = 30) -> float:
        return sum(self.powers[-last_s:]) / last_s

    def knob_changes(self, since: float) -> list:
        return [c for c in self.plant.changes if c[0] > since]


def budgets(**kw) -> Budgets:
    kw.setdefault("temperature_c", None)
    return Budgets(**kw)


@pytest.fixture
def empty_root(tmp_path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    return root


# -- power --------------------------------------------------------------------------------------------


def test_unconstrained_plant_is_left_alone(empty_root):
    run = Run(person_plant(), budgets(power_w=10.0), empty_root)
    run.seconds(120)
    assert run.plant.changes == []
    assert run.monitor.status()["state"] == "free"
    assert run.monitor.status()["power"]["state"] == "headroom"


@pytest.mark.parametrize("budget_w", [5.0, 4.0, 3.3])
def test_converges_under_the_budget_by_rate_and_stays_put(empty_root, budget_w):
    run = Run(person_plant(), budgets(power_w=budget_w), empty_root)
    unconstrained = run.plant.power()
    assert unconstrained > budget_w
    run.seconds(60)
    settled = run.plant.now
    run.seconds(600)
    assert abs(run.mean_power() / budget_w - 1) <= 0.10
    assert run.mean_power() <= budget_w
    assert run.knob_changes(settled) == []  # no oscillation once settled
    # Frame rate was the knob: the accurate variant and all threads are kept.
    assert (run.plant.variant, run.plant.threads, run.plant.paused) == ("float32", 4, False)
    assert run.plant.fps() > 1.0


def test_no_oscillation_with_noisy_power(empty_root):
    run = Run(person_plant(), budgets(power_w=4.0), empty_root, noise=0.05)
    run.seconds(120)
    settled = run.plant.now
    run.seconds(600)
    assert abs(run.mean_power(60) / 4.0 - 1) <= 0.10
    assert len(run.knob_changes(settled)) <= 2  # 10 minutes of ±5% noise: at most a trim or two


def test_tight_budget_walks_the_ladder_to_the_cheaper_variant(empty_root):
    run = Run(person_plant(), budgets(power_w=3.0, min_fps=3.0), empty_root)
    run.seconds(180)
    knobs = [kind for _, kind, _ in run.plant.changes]
    # Cheapest knob first: rate down to min_fps, then the ladder: straight to the level predicted
    # to fit from the variants' costs (fewer threads alone would not), never the rate below min_fps.
    assert knobs.index("rate_limit") < knobs.index("variant")
    assert run.plant.changes[knobs.index("rate_limit")][2] == 3.0 or knobs.count("rate_limit") > 1
    assert run.plant.variant == "int8"  # float16 is dearer than float32 and no more accurate: skipped
    assert "float16" not in [v for _, k, v in run.plant.changes if k == "variant"]
    settled = run.plant.now
    run.seconds(300)
    assert run.mean_power() <= 3.0 and abs(run.mean_power() / 3.0 - 1) <= 0.10
    assert run.knob_changes(settled) == []
    assert run.plant.fps() >= 3.0


def test_recovers_when_the_budget_is_raised(empty_root):
    run = Run(person_plant(), budgets(power_w=3.0, min_fps=3.0), empty_root)
    run.seconds(240)
    assert run.plant.variant == "int8"
    run.monitor.reload(budgets(power_w=8.0, min_fps=3.0))
    run.seconds(240)
    assert (run.plant.variant, run.plant.threads, run.plant.paused, run.plant.rate_limit) == ("float32", 4, False, None)
    assert run.monitor.status()["state"] == "free"
    settled = run.plant.now
    run.seconds(300)
    assert run.knob_changes(settled) == []


def test_budget_below_idle_pauses_says_so_and_resumes(empty_root):
    run = Run(person_plant(), budgets(power_w=2.5), empty_root)  # idle alone is 2.7 W
    run.seconds(300)
    assert run.plant.paused
    notes = [e for e in run.events if e[1] == "budget.note"]
    assert len(notes) == 1 and "unreachable" in notes[0][2]
    assert run.monitor.status()["state"] == "paused"
    run.monitor.reload(budgets(power_w=4.0))
    run.seconds(300)
    assert not run.plant.paused
    assert abs(run.mean_power() / 4.0 - 1) <= 0.10


def test_every_decision_is_an_event_with_its_figures(empty_root):
    run = Run(person_plant(), budgets(power_w=4.0), empty_root)
    run.seconds(60)
    decisions = [e for e in run.events if e[1].startswith("budget.rate_limit")]
    assert len(decisions) == len([c for c in run.plant.changes if c[1] == "rate_limit"]) >= 1
    _, kind, message, detail = decisions[0]
    assert message.startswith("rate_limit unlimited -> ") and "over budget 4 W" in message
    assert detail["knob"] == "rate_limit" and detail["from"] is None and detail["to"] == run.plant.changes[0][2]
    assert detail["figures"]["power_w"] > 4.0
    status = run.monitor.status()
    assert status["decisions"] == len(run.plant.changes)
    assert status["last_decision"]["knob"] == "rate_limit"
    assert status["power"]["source"] == "sensor:plant" and status["power"]["budget_w"] == 4.0
    assert status["knobs"]["rate_limit"] == run.plant.rate_limit


def test_a_variant_that_fails_to_load_is_not_retried(empty_root):
    plant = person_plant()
    plant.broken = {"int8"}
    run = Run(plant, budgets(power_w=3.0, min_fps=3.0), empty_root)
    run.seconds(300)
    failed = [e for e in run.events if e[1] == "budget.variant.failed"]
    assert len(failed) == 1 and "failed its test invocation" in failed[0][2]
    assert plant.variant == "float32"
    # nothing cheaper left: a rate below min_fps (or a pause) rather than break the budget
    assert plant.paused or plant.rate_limit < 3.0
    assert "int8" in run.monitor.status()["controller"]["banned"]


# -- temperature and the firmware's flags -------------------------------------------------------------


def test_temperature_over_budget_slows_down_and_cool_restores(tmp_path):
    root = tmp_path / "root"
    shutil.copytree(FIXTURES / "pi5", root, symlinks=True)
    temp = root / "sys/class/thermal/thermal_zone0/temp"
    run = Run(person_plant(), Budgets(temperature_c=70.0), root)
    run.seconds(30)
    assert run.plant.changes == []  # 58 °C
    temp.write_text("74500\n")
    run.seconds(35)
    limits = [v for _, k, v in run.plant.changes if k == "rate_limit"]
    assert limits and limits[0] == pytest.approx(16.84 * 0.75, rel=0.02)
    assert "temperature 74.5 °C over budget 70 °C" in run.events[0][2]
    temp.write_text("67000\n")  # under the budget but inside the 5 °C hysteresis: hold
    before = len(run.plant.changes)
    run.seconds(60)
    assert len(run.plant.changes) == before
    temp.write_text("55000\n")
    run.seconds(120)
    assert run.plant.rate_limit is None


def test_firmware_under_voltage_flag_sheds_load(tmp_path):
    root = tmp_path / "root"
    shutil.copytree(FIXTURES / "pi4", root, symlinks=True)  # vcgencmd replays throttled=0x50005
    run = Run(person_plant(), Budgets(temperature_c=None), root)
    run.seconds(40)
    assert run.plant.rate_limit is not None
    assert any("under-voltage" in e[2] for e in run.events)
    assert run.monitor.status()["throttling"]["now"] == ["under-voltage", "throttled"]


# -- memory -------------------------------------------------------------------------------------------


def _infos(plant: Plant) -> list[VariantInfo]:
    return [VariantInfo.from_variant(v) for v in plant.bundle_variants()]


def test_memory_budget_below_the_float32_footprint_chooses_int8():
    plant = person_plant()
    name, why = pick_variant(_infos(plant), "float32", memory_mb=100.0)
    assert name == "int8"
    assert "float32 needs 120 MB > memory budget 100 MB" in why
    assert pick_variant(_infos(plant), "float32", memory_mb=None)[0] == "float32"
    assert pick_variant(_infos(plant), "float32", memory_mb=130.0)[0] == "float32"


def test_a_loaded_variant_that_does_not_fit_is_reported(empty_root):
    plant = person_plant()
    run = Run(plant, budgets(memory_mb=100.0, memory_hard_mb=400.0), empty_root)
    run.seconds(5)
    note = next(e for e in run.events if e[1] == "budget.note")
    assert note[2] == "variant float32 is loaded but float32 needs 120 MB > memory budget 100 MB; int8 needs 45 MB: restart to load int8"
    assert plant.variant == "float32"  # swapping in a running process would not give the memory back
    assert plant.sheds == 1 and run.monitor.status()["memory"]["state"] == "over"


def test_the_power_ladder_never_steps_into_a_variant_that_does_not_fit(empty_root):
    plant = person_plant()
    plant.variants["int8-big"] = PlantVariant(latency_ms_1t=100.0, joules_1t=0.07, peak_rss_mb=200.0, fidelity=0.99)
    run = Run(plant, budgets(power_w=3.0, min_fps=3.0, memory_mb=150.0, memory_hard_mb=400.0), empty_root)
    run.seconds(240)
    assert [v for _, k, v in plant.changes if k == "variant"] == ["int8"]
    assert plant.rss() <= 150.0


def test_soft_breach_sheds_caches_and_keeps_running(empty_root):
    plant = person_plant()
    run = Run(plant, budgets(memory_mb=150.0, memory_hard_mb=400.0), empty_root)
    run.seconds(5)
    plant.extra_rss_mb = 40.0  # a leak: 160 MB
    run.seconds(2)
    assert plant.sheds == 1
    run.seconds(60)
    assert plant.sheds == 3  # again every 30 s while over, no more often
    assert plant.variant == "float32" and run.hard == []
    assert run.monitor.status()["memory"]["state"] == "over"
    plant.extra_rss_mb = 0.0
    run.seconds(2)
    assert run.monitor.status()["memory"]["state"] == "ok"


def test_hard_breach_calls_the_daemons_exit(empty_root):
    plant = person_plant()
    run = Run(plant, budgets(memory_mb=150.0, memory_hard_mb=200.0), empty_root)
    run.seconds(3)
    plant.extra_rss_mb = 100.0
    run.seconds(3)
    assert len(run.hard) == 1 and "hard memory budget 200 MB" in run.hard[0]
    assert run.events[-1][1] == "budget.hard_limit"  # recorded before exiting


def test_hard_breach_without_a_callback_exits_75(empty_root):
    plant = person_plant()
    plant.extra_rss_mb = 500.0
    run = Run(plant, budgets(memory_mb=150.0), empty_root, on_hard_limit=None)
    with pytest.raises(MemoryHardLimit) as info:
        run.seconds(1)
    assert info.value.code == exitcodes.MEMORY_HARD_LIMIT == 75


def test_step_down_order_skips_dominated_variants():
    infos = [VariantInfo("fp32", 40.0, 120.0, 1.0), VariantInfo("fp16", 42.0, 125.0, 0.99), VariantInfo("int8-320", 20.0, 50.0, 0.97),
             VariantInfo("int8-256", 14.0, 40.0, 0.93), VariantInfo("int8-bad", 16.0, 40.0, 0.90)]
    assert [v.name for v in step_down_order(infos, "fp32")] == ["fp32", "int8-320", "int8-256"]
    assert [v.name for v in step_down_order(infos, "int8-320")] == ["int8-320", "int8-256"]


def test_history_stays_bounded_while_paused_over_budget(empty_root):
    """Paused and still over budget (the board's own draw): the controller keeps ticking for
    hours; what it remembers must not grow with them."""
    run = Run(person_plant(), budgets(power_w=0.5, min_fps=3.0), empty_root)
    run.seconds(3000)
    samples = len(run.monitor.controller._samples)
    assert run.plant.paused
    assert samples <= int(run.monitor.controller.period_s * 4)
