"""ResourceMonitor: what the daemon builds and ticks about once a second from its monitor thread.

    from runtime.monitor.monitor import ResourceMonitor, choose_variant
    variant, why = choose_variant(bundle, budgets)              # before loading: never load a variant that does not fit
    mon = ResourceMonitor(budgets, pipeline, event_log.record_system,
                          variants=bundle.variants, max_threads=config.threads,
                          on_hard_limit=lambda reason: service.stop(exitcodes.MEMORY_HARD_LIMIT))
    while running: mon.tick(); sleep(1)                         # read sensors, decide, act, report
    status["budget"] = mon.status()                             # any thread: a finished dict, swapped whole
    mon.reload(new_budgets, variants=new_bundle.variants)       # SIGHUP, once the new model serves

`pipeline` is the actuator (docs/DESIGN.md): set_rate_limit(fps|None), set_threads(n),
set_variant(name) (loads and tests before swapping; raises on failure), set_paused(bool),
shed_caches(), health() -> runtime.health.PipelineHealth (what it reads: fps, invoke time, RSS,
the variant and threads serving).

A hard memory breach is recorded, then `on_hard_limit(reason)` is called once. tick() runs on the
monitor thread, where sys.exit would end only that thread; so the daemon passes a callback that
stops the service and exits with exitcodes.MEMORY_HARD_LIMIT from its main thread. Without one,
tick() raises MemoryHardLimit (a SystemExit with that code) for a single-threaded caller.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol

from .. import exitcodes
from ..config import Budgets
from ..health import PipelineHealth
from .readings import BoardSensors, Readings
from .controller import Action, Controller, Knobs, Observation
from .sensors.power import PowerSource
from .variants import VariantInfo, pick_variant, variant_infos

log = logging.getLogger(__name__)

EventSink = Callable[[str, str, dict], None]


class Actuator(Protocol):
    def set_rate_limit(self, fps: float | None) -> None: ...
    def set_threads(self, n: int) -> None: ...
    def set_variant(self, name: str) -> None: ...
    def set_paused(self, paused: bool) -> None: ...
    def shed_caches(self) -> None: ...
    def health(self) -> PipelineHealth: ...


class MemoryHardLimit(SystemExit):
    def __init__(self, reason: str):
        super().__init__(exitcodes.MEMORY_HARD_LIMIT)
        self.reason = reason


def choose_variant(bundle: Any, budgets: Budgets, preferred: str | None = None, board: Any = None) -> tuple[str, str]:
    """The variant to load from a `runtime.bundle.Bundle` under the memory budget, and why:
    `preferred` (the config's) if it fits; else, with the ladder on, the most accurate that fits
    (the top of the ladder); with it off, the bundle's default. `board`: this board's BoardCosts."""
    infos = variant_infos(bundle.variants, (bundle.input.width, bundle.input.height), board)
    if preferred is None and not budgets.ladder:
        preferred = bundle.default_variant
    return pick_variant(infos, preferred, budgets.memory_mb)


class ResourceMonitor:
    def __init__(
        self,
        budgets: Budgets,
        actuator: Actuator,
        event_sink: EventSink,
        sensors_root: str | Path = "/",
        *,
        variants: Iterable[Any] | None = None,
        board_costs: Any = None,
        max_threads: int | None = None,
        on_hard_limit: Callable[[str], None] | None = None,
        power: PowerSource | None = None,
        vcgencmd: str | Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        pid: int | None = None,
    ):
        """`variants`: runtime.bundle.Variant (or VariantInfo) of the bundle serving; `board_costs`:
        what they cost on this board (board_costs.BoardCosts), when measured; `max_threads`: the
        most threads the controller may restore (default: the threads running now); `power`
        overrides the power source (a simulated plant in tests); `vcgencmd` the command's path."""
        self.budgets = budgets
        self._actuator = actuator
        self._sink = event_sink
        self._on_hard_limit = on_hard_limit
        self._clock = clock
        self._power_override = power
        self._sensor_args = {"vcgencmd": vcgencmd, "pid": pid}
        # tick() (the monitor thread) and reload() (SIGHUP, the main thread) never interleave.
        self._lock = threading.Lock()
        self.sensors = self._make_sensors(sensors_root, budgets)
        health = self._health()
        self._variants = list(variants or ())
        threads = health.model.threads if health else max_threads or 1
        infos = _infos(self._variants, board_costs, threads)
        variant = health.model.variant if health else (infos[0].name if infos else "default")
        self.controller = Controller(
            budgets, infos, Knobs(rate_limit=None, threads=threads, variant=variant), max_threads or threads,
            baseline_w=getattr(self.sensors.power_source, "baseline_w", None),
        )
        self.decisions = 0
        self.last_decision: dict[str, Any] | None = None
        self._status: dict[str, Any] = {"state": "starting", "budgets": budgets.as_dict()}
        self.last_readings: Readings | None = None
        self.tick_cpu_s = 0.0  # the monitor's own cost, summed over ticks (thread CPU time)
        self.ticks = 0

    def _make_sensors(self, root: str | Path, budgets: Budgets) -> BoardSensors:
        return BoardSensors(
            root,
            power_scope=budgets.power_scope,
            board=budgets.board,
            power_window_s=budgets.power_window_s,
            power=self._power_override,
            **self._sensor_args,
        )

    def _health(self) -> PipelineHealth | None:
        try:
            return self._actuator.health()
        except Exception as exc:  # noqa: BLE001 - a monitor that dies with the pipeline cannot report why it died
            log.warning("pipeline health unavailable: %s", exc)
            return None

    def reload(self, budgets: Budgets, variants: Iterable[Any] | None = None, *, same_bundle: bool = False,
               board_costs: Any = None) -> None:
        """SIGHUP: new budgets and, when given, the variants of a new bundle (call it once the new
        model serves), with this board's figures for them (`board_costs`) when measured. A new
        power scope or board profile means a new power source. What the controller learned (baseline power, each level's draw) is kept: it is physics."""
        with self._lock:
            old = self.budgets
            if (budgets.power_scope, budgets.board, budgets.power_window_s) != (old.power_scope, old.board, old.power_window_s):
                self.sensors = self._make_sensors(self.sensors.root, budgets)
            self.budgets = budgets
            self.controller.set_budgets(budgets)
            if variants is not None:
                health = self._health()
                self._variants = list(variants)
                self.controller.set_variants(_infos(self._variants, board_costs, health.model.threads if health else 1),
                                             health.model.variant if health else None,
                                             health.model.threads if health else None, same_bundle=same_bundle)
            self._restate_controller()
            self._emit("budget.reload", "budgets reloaded", {"budgets": budgets.as_dict(),
                                                             "ladder": self.controller.ladder_names()})

    def set_board_costs(self, board_costs: Any) -> None:
        """This board's own figures, measured after start: the ladder is ordered by them from now on."""
        with self._lock:
            before = self.controller.cost_source
            infos = _infos(self._variants, board_costs, self.controller.knobs.threads)
            self.controller.set_costs(infos)
            self._restate_controller()
            if self.controller.cost_source == before:
                return
            order = [f"{v.name} {v.cost:.1f}" for v in sorted(infos, key=lambda v: v.cost)]
            what = "this board's own measurements" if self.controller.cost_source == "board" else "the bundle's figures"
            self._emit("budget.costs", f"the ladder is now ordered by {what} (ms per invoke): {', '.join(order)}",
                       {"costs": self.controller.cost_source, "ladder": self.controller.ladder_names(),
                        "variants": {v.name: {"cost": v.cost, "fidelity": v.fidelity, "peak_rss_mb": v.peak_rss_mb} for v in infos}})

    def use_threads(self, threads: int, why: str) -> None:
        """The thread count measured to serve best on this board: the pipeline runs at it, and the
        controller restores no more than it."""
        with self._lock:
            previous = self.controller.knobs.threads
            self.controller.set_max_threads(threads)
            now = self.controller.knobs.threads
            if previous != now:
                self._apply(Action("threads", now, previous, why))
            self._restate_controller()

    def _restate_controller(self) -> None:
        """The status says at once what a change between ticks made of the controller (its
        ladder, where its costs come from, its knobs), not a tick later. Call holding the lock."""
        if "controller" not in self._status:
            return  # no tick yet: the first one says it all
        self._status = {**self._status, "controller": self.controller.status(), "knobs": _knobs(self.controller.knobs)}

    def tick(self) -> None:
        with self._lock:
            hard = self._tick()
        if hard is not None:
            if self._on_hard_limit is None:
                raise MemoryHardLimit(hard)
            self._on_hard_limit(hard)

    def _tick(self) -> str | None:
        cpu0 = time.thread_time()
        now = self._clock()
        health = self._health()
        readings = self.sensors.read(now)
        self.last_readings = readings
        hot = readings.hottest
        obs = Observation(
            now=now,
            power_w=readings.power.watts if readings.power else None,
            temperature_c=hot.celsius if hot else None,
            hot=bool(readings.throttling and readings.throttling.hot),
            under_voltage=bool(readings.throttling and readings.throttling.under_voltage),
            fps=health.fps if health else None,
            rss_mb=health.rss_mb if health and health.rss_mb is not None else readings.process.rss_mb,
            active=health.motion.active if health and health.motion and health.motion.enabled else None,
        )
        hard: str | None = None
        for action in self.controller.step(obs):
            if action.knob == "hard_limit":
                hard = action.reason
            self._apply(action)
        self._status = self._build_status(readings, health, obs)
        self.tick_cpu_s += time.thread_time() - cpu0
        self.ticks += 1
        return hard

    def _apply(self, action: Action) -> None:
        a = self._actuator
        apply: dict[str, Callable[[], Any]] = {
            "rate_limit": lambda: a.set_rate_limit(action.value),
            "threads": lambda: a.set_threads(int(action.value)),
            "variant": lambda: a.set_variant(str(action.value)),
            "paused": lambda: a.set_paused(bool(action.value)),
            "shed_caches": a.shed_caches,
        }
        detail = {"knob": action.knob, "from": action.previous, "to": action.value, "reason": action.reason, "figures": action.figures}
        if action.knob in apply:
            try:
                apply[action.knob]()
            except Exception as exc:  # noqa: BLE001 - the pipeline refused (a variant that would not load): keep running as we were
                self.controller.refused(action, str(exc))
                self._emit(f"budget.{action.knob}.failed", f"{action.knob} -> {action.value} failed: {exc}; keeping {action.previous}", detail)
                return
        self.decisions += 1
        message = _message(action)
        self.last_decision = {"message": message, **detail}
        self._emit(f"budget.{action.knob}", message, detail)

    def _emit(self, kind: str, message: str, detail: dict) -> None:
        log.info("%s: %s", kind, message)
        try:
            self._sink(kind, message, detail)
        except Exception as exc:  # noqa: BLE001 - a full disk must not stop the budget from being held
            log.warning("could not record %s: %s", kind, exc)

    def _build_status(self, readings: Readings, health: PipelineHealth | None, obs: Observation) -> dict[str, Any]:
        b = self.budgets
        knobs = self.controller.knobs
        ctl = self.controller.status()
        data = readings.as_dict()
        data["power"].update(budget_w=b.power_w, scope=b.power_scope, control_mean_w=_round(self.controller.last_means["power_w"]),
                             state=ctl["state"].get("power", "no budget" if b.power_w is None else "measuring"))
        rss_source = "pipeline:health" if health is not None and health.rss_mb is not None else readings.process.source
        data["memory"].update(rss_mb=_round(obs.rss_mb, 1), rss_source=rss_source, budget_mb=b.memory_mb, hard_mb=b.memory_hard_mb,
                              state=ctl["state"].get("memory", "no budget"))
        data["temperature"].update(budget_c=b.temperature_c, state=ctl["state"].get("temperature", "no sensor" if obs.temperature_c is None else "ok"))
        degraded = knobs.paused or ctl["level"] > 0 or knobs.rate_limit is not None
        return {
            "state": "paused" if knobs.paused else "limited" if degraded else "free",
            "knobs": _knobs(knobs),
            "fps": _round(obs.fps, 2),
            **data,
            "controller": ctl,
            "decisions": self.decisions,
            "last_decision": self.last_decision,
            "budgets": b.as_dict(),
            "board": self.sensors.model,
            "monitor_cpu_ms_per_tick": _round(1000 * self.tick_cpu_s / self.ticks, 3) if self.ticks else None,
            "ticks": self.ticks,
        }

    def status(self) -> dict[str, Any]:
        return self._status


def _infos(variants: list[Any], board: Any = None, threads: int = 1) -> list[VariantInfo]:
    """The controller's view of a bundle's variants (bundle.Variant, or VariantInfo as they are),
    with this board's measured costs when it has them for every variant."""
    if all(isinstance(v, VariantInfo) for v in variants):
        return list(variants)
    return variant_infos(variants, None, board, threads)


def _knobs(knobs: Any) -> dict[str, Any]:
    return {"rate_limit": knobs.rate_limit, "threads": knobs.threads, "variant": knobs.variant, "paused": knobs.paused}


def _message(action: Action) -> str:
    if action.knob == "shed_caches":
        return f"shed caches: {action.reason}"
    if action.knob in ("note", "hard_limit"):
        return action.reason
    return f"{action.knob} {_show(action.previous)} -> {_show(action.value)}: {action.reason}"


def _show(value: Any) -> str:
    return "unlimited" if value is None else str(value)


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)
