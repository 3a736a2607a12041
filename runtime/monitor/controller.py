"""The budget controller: a closed loop from figures to knobs, deterministic (time comes in with
each observation), so it can be tested against a simulated plant.

Knobs, cheapest first (what is given up first is frame rate above `min_fps`, then accuracy, then
everything):

    rate limit down to min_fps -> threads -> a cheaper variant (the ladder) -> rate below min_fps -> pause

`min_fps` is the rate the application needs: the ladder starts at the most accurate variant and
steps down before the rate is cut below it. The rate limit is continuous: power is modelled as
P = P0 + e * fps (P0 the baseline, learned from two operating points when the source does not
know it) and the limit is set so the mean lands at 95% of the budget. Only when the rate is
already at `min_fps` does a discrete step follow: when the variants' costs are measured (the
board's own figures, else the converter's), straight to the most accurate level predicted to fit
(e = e_now x cost(target) / cost(now)), else one level down. Each level's power at `min_fps` is
remembered when we leave it, so it is restored only when it would fit with 15% to spare
(hysteresis; a level never measured, when predicted to), after the headroom has lasted a whole
period, and a restore that fails is retried only after a backoff that doubles (no oscillation
between two levels). The ladder holds only variants at least `min_fidelity` faithful to the
source: a variant that loses the objects is no step. At its cheapest level the rate goes below
`min_fps`, down to PAUSE_BELOW_FPS, before the pause. With `ladder` off (rate-only control) the
rate is the only knob.

Decisions are made once per control period on the mean since the last change (after a settle
time), and only outside a dead band of [90%, 100%] of the budget. A step down the ladder for power
less than STEP_MARGIN over the budget waits until the excess has lasted CONFIRM_PERIODS periods:
a shared machine's load drifts for tens of seconds, and accuracy is not given up for a swing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..config import Budgets
from .variants import VariantInfo, fits, pick_variant, step_down_order

TARGET = 0.95  # aim for this share of the power budget
BAND_LOW = 0.90  # below: headroom, raise
RESTORE_AT = 0.85  # a level is restored only if it drew at most this share of the budget at min_fps
RAISE_MAX = 1.5  # at most x1.5 on the rate limit per period: estimates are noisy, overshoot costs a period
COOL_MARGIN_C = 5.0  # temperature hysteresis
THERMAL_PERIOD_S = 30.0  # boards heat and cool over tens of seconds: act on temperature at most this often
THERMAL_CUT = 0.75
SHED_EVERY_S = 30.0
RETRY_FIRST_S, RETRY_MAX_S = 60.0, 3600.0
RECENT_S = 120.0  # a step down this soon after a step up means the step up did not fit
SETTLE_S = 5.0
STEP_MARGIN = 0.10  # over the budget by less than this share at min_fps: maybe noise, confirm first
CONFIRM_PERIODS = 6
PAUSE_BELOW_FPS = 0.2  # at the cheapest level, a rate below this (one frame in 5 s) is a pause
# With a motion gate, the rate is held down by the scene as much as by the limit: only a period
# with motion at least this much of the time says whether the limit binds.
ACTIVE_ENOUGH = 0.5


@dataclass(frozen=True)
class Observation:
    now: float
    power_w: float | None = None
    temperature_c: float | None = None
    hot: bool = False  # firmware throttling for temperature right now
    under_voltage: bool = False
    fps: float | None = None  # inference rate reached
    rss_mb: float | None = None
    active: float | None = None  # share of recent frames with motion (None: no motion gate)


@dataclass
class Knobs:
    rate_limit: float | None
    threads: int
    variant: str
    paused: bool = False


@dataclass(frozen=True)
class Action:
    knob: str  # rate_limit | threads | variant | paused | shed_caches | hard_limit | note
    value: Any
    previous: Any
    reason: str
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    reasons: list[str]  # why to reduce (empty: do not)
    power_over: bool
    thermal_over: bool  # temperature or under-voltage: cut by THERMAL_CUT at most every THERMAL_PERIOD_S
    may_raise: bool  # headroom on every budget and something is reduced


@dataclass(frozen=True)
class Level:
    threads: int
    variant: str


class Controller:
    def __init__(
        self,
        budgets: Budgets,
        variants: list[VariantInfo],
        knobs: Knobs,
        max_threads: int,
        baseline_w: float | None = None,
    ):
        self.budgets = budgets
        self.knobs = knobs
        self._variants = {v.name: v for v in variants} or {knobs.variant: VariantInfo(knobs.variant, 1.0, None, None)}
        if knobs.variant not in self._variants:
            self._variants[knobs.variant] = VariantInfo(knobs.variant, 1.0, None, None)
        self._top = knobs.variant
        self._max_threads = max(1, max_threads)
        # The source's baseline (a profile's idle) is a floor: capture, decoding and other work add to it.
        self._baseline_floor = baseline_w or 0.0
        self.baseline_w = self._baseline_floor
        self.banned: dict[str, str] = {}  # variant -> why it failed to load
        # After a change, figures need time to show it: the pipeline's fps is a mean over 5 s, and a
        # CPU-time estimate moves in whole ticks. Decide on the mean of at least 3 settled samples.
        self.settle_s = SETTLE_S
        self.period_s = max(SETTLE_S + 3.0, min(15.0, budgets.power_window_s / 3))
        self._samples: list[tuple[float, float | None, float | None]] = []  # (t, power, fps) since the last change
        self._changed_at = -math.inf
        self._thermal_at = -math.inf
        self._floor_power: dict[Level, float] = {}  # level -> mean W at min_fps when we stepped down from it
        self._stepped_up_at: dict[Level, float] = {}
        self._retry: dict[Level, tuple[float, float]] = {}  # level -> (not before, next backoff)
        self._prev_point: tuple[float, float] | None = None  # (fps, W) of the last period at this level
        self._shed_at = -math.inf
        self._headroom_since: float | None = None  # since when every budget has had headroom
        self._marginal_since: float | None = None  # since when power has been slightly over at min_fps
        self._paused_rate: float | None = None  # the rate limit when the controller paused
        self._hard_fired = False
        self._fit_checked = False
        self._unreachable_noted = False
        self.state: dict[str, str] = {}
        self.last_means: dict[str, float | None] = {"power_w": None, "fps": None, "active": None}
        self._actives: list[tuple[float, float]] = []  # (t, share of frames with motion), when a motion gate reports it
        self._ladder = self._build_ladder()

    # -- the ladder of discrete levels ---------------------------------------------------------

    def _rebuild_ladder(self) -> None:
        """A new ladder: a slight excess seen on the old one no longer counts towards a step."""
        self._marginal_since = None
        self._ladder = self._build_ladder()

    def _build_ladder(self) -> list[Level]:
        if not self.budgets.ladder:  # rate-only control
            return [Level(self.knobs.threads, self.knobs.variant)]
        # Neither a variant that failed nor one whose measured footprint exceeds the memory budget.
        # Nor one less faithful than min_fidelity: below it the rate is cut instead.
        allowed = [v for v in step_down_order(self._variants.values(), self._top)
                   if v.name == self.knobs.variant or (v.name not in self.banned and fits(v, self.budgets.memory_mb)
                                                       and (v.fidelity is None or v.fidelity >= self.budgets.min_fidelity))]
        if not allowed:
            allowed = [self._variants[self.knobs.variant]]
        ladder = [Level(t, allowed[0].name) for t in range(self._max_threads, 0, -1)]
        ladder += [Level(1, v.name) for v in allowed[1:]]
        return ladder

    @property
    def level(self) -> int:
        """Index of the current knobs on the ladder (len(ladder) = paused)."""
        if self.knobs.paused:
            return len(self._ladder)
        here = Level(self.knobs.threads, self.knobs.variant)
        if here in self._ladder:
            return self._ladder.index(here)
        same = [i for i, lv in enumerate(self._ladder) if lv.variant == self.knobs.variant]
        return same[0] if same else 0

    def set_costs(self, variants: list[VariantInfo]) -> None:
        """New figures for the serving bundle's variants (the board's own, measured after start):
        the ladder is ordered again; what was learned about power at each level stays."""
        known = {v.name: v for v in variants}
        if self.knobs.variant not in known:
            return
        self._variants = known
        self._rebuild_ladder()

    def set_max_threads(self, threads: int) -> None:
        """The thread count measured best here becomes the top of the ladder's thread steps."""
        self._max_threads = max(1, threads)
        self.knobs.threads = min(self.knobs.threads, self._max_threads) if self.level > 0 else self._max_threads
        self._rebuild_ladder()

    @property
    def cost_source(self) -> str:
        sources = {v.cost_source for v in self._variants.values()}
        return sources.pop() if len(sources) == 1 else "mixed"

    def set_budgets(self, budgets: Budgets) -> None:
        """A reload: new limits; remembered floor powers stay (they are physics), backoffs do not."""
        self.budgets = budgets
        self.period_s = max(SETTLE_S + 3.0, min(15.0, budgets.power_window_s / 3))
        self._retry.clear()
        self._unreachable_noted = False
        self._fit_checked = False
        self._rebuild_ladder()

    def set_variants(self, variants: list[VariantInfo], serving: str | None, threads: int | None, *,
                     same_bundle: bool = False) -> None:
        """A reload brought a bundle (maybe the same one): its variants make the ladder, topped by
        the one serving. Failed variants are tried again; what each level drew is kept only for the
        same bundle, while the board's baseline power is kept whatever the model."""
        if serving is not None:
            self.knobs.variant = serving
            self._top = serving
        if threads is not None:
            self.knobs.threads = threads
        self._variants = {v.name: v for v in variants}
        if self.knobs.variant not in self._variants:
            self._variants[self.knobs.variant] = VariantInfo(self.knobs.variant, 1.0, None, None)
        self.banned.clear()
        if not same_bundle:
            self._floor_power.clear()
            self._stepped_up_at.clear()
            self._prev_point = None
        self._retry.clear()
        self._fit_checked = False
        self._rebuild_ladder()

    def ladder_names(self) -> list[str]:
        return [f"{lv.variant}/{lv.threads}t" for lv in self._ladder]

    # -- one observation per tick --------------------------------------------------------------

    def step(self, obs: Observation) -> list[Action]:
        actions = self._memory(obs)
        if any(a.knob == "hard_limit" for a in actions):
            return actions
        if self._changed_at == -math.inf:
            # The start counts as a change: start-up work (loading, the first inferences) drawn at
            # a rate still ramping up is no operating point to judge or to learn a baseline from.
            self._changed_at = obs.now
        self._samples.append((obs.now, obs.power_w, obs.fps))
        if obs.active is not None:
            self._actives = [a for a in self._actives if a[0] >= self._changed_at + self.settle_s][-int(self.period_s * 4):]
            self._actives.append((obs.now, obs.active))
        if obs.now - self._changed_at < self.period_s:
            return actions
        settled = [s for s in self._samples if s[0] >= self._changed_at + self.settle_s]
        powers = [p for _, p, _ in settled if p is not None]
        fpss = [f for _, _, f in settled if f is not None]
        power = sum(powers) / len(powers) if powers else None
        fps = sum(fpss) / len(fpss) if fpss else None
        actives = [a for t, a in self._actives if t >= self._changed_at + self.settle_s]
        self.last_means = {"power_w": power, "fps": fps, "active": sum(actives) / len(actives) if actives else None}
        self._learn_baseline(power, fps)
        verdict = self._judge(obs, power)
        if not verdict.may_raise:
            self._headroom_since = None
        elif self._headroom_since is None:
            self._headroom_since = obs.now
        if not verdict.power_over:
            self._marginal_since = None
        if verdict.reasons:
            actions += self._reduce(obs, power, fps, verdict)
        elif verdict.may_raise:
            actions += self._restore(obs, power, fps)
        # bounded whatever happens: paused and still over budget, or a restore held back, adds a
        # sample every tick for as long as it lasts
        self._samples = self._samples[-int(self.period_s * 4):]
        return actions

    def _judge(self, obs: Observation, power: float | None) -> Verdict:
        b = self.budgets
        reasons = []
        power_over = thermal_over = False
        power_ok_to_raise = True
        if b.power_w is not None and power is not None:
            if power > b.power_w:
                power_over = True
                reasons.append(f"power {power:.2f} W over budget {b.power_w:g} W")
                self.state["power"] = "over"
            elif power < BAND_LOW * b.power_w:
                self.state["power"] = "headroom"
            else:
                self.state["power"] = "ok"
                power_ok_to_raise = False
        thermal_due = obs.now - self._thermal_at >= THERMAL_PERIOD_S
        cool = True
        if b.temperature_c is not None and (obs.temperature_c is not None or obs.hot):
            hot = obs.hot or (obs.temperature_c is not None and obs.temperature_c > b.temperature_c)
            cool = not obs.hot and obs.temperature_c is not None and obs.temperature_c < b.temperature_c - COOL_MARGIN_C
            self.state["temperature"] = "over" if hot else "ok" if not cool else "headroom"
            if hot and thermal_due:
                thermal_over = True
                reasons.append(f"temperature {obs.temperature_c:.1f} °C over budget {b.temperature_c:g} °C"
                               if obs.temperature_c is not None else "firmware is throttling for temperature")
        if obs.under_voltage and thermal_due:
            thermal_over = True  # a slow, physical limit like heat: the same cut, at the same pace
            reasons.append("under-voltage: the supply cannot hold 5 V at this load")
        reduced = self.knobs.paused or self.level > 0 or self.knobs.rate_limit is not None
        may_raise = not reasons and reduced and power_ok_to_raise and cool and thermal_due
        return Verdict(reasons, power_over, thermal_over, may_raise)

    def _learn_baseline(self, power: float | None, fps: float | None) -> None:
        """P0 from two operating points at the same level (secant), when the source does not know it."""
        if power is None or fps is None:
            return
        if self.knobs.paused:
            self.baseline_w = max(self._baseline_floor, power)  # paused: what we draw is the baseline
            return
        prev, self._prev_point = self._prev_point, (fps, power)
        if prev is None or abs(fps - prev[0]) < 0.2 * max(fps, prev[0], 1e-9):
            return
        slope = (power - prev[1]) / (fps - prev[0])
        if slope <= 0:
            return
        p0 = min(max(self._baseline_floor, power - slope * fps), 0.9 * min(power, prev[1]))
        self.baseline_w = p0 if self.baseline_w == self._baseline_floor else 0.5 * (self.baseline_w + p0)

    def _figures(self, obs: Observation, power: float | None, fps: float | None) -> dict[str, Any]:
        return {
            "power_w": None if power is None else round(power, 3),
            "fps": None if fps is None else round(fps, 2),
            "temperature_c": obs.temperature_c,
            "rss_mb": None if obs.rss_mb is None else round(obs.rss_mb, 1),
            "baseline_w": round(self.baseline_w, 3),
            "level": self.level,
        }

    # -- stepping down -------------------------------------------------------------------------

    def _reduce(self, obs: Observation, power: float | None, fps: float | None, verdict: Verdict) -> list[Action]:
        why = "; ".join(verdict.reasons)
        figures = self._figures(obs, power, fps)
        if verdict.thermal_over:
            self._thermal_at = obs.now
        if self.knobs.paused:
            if self._unreachable_noted:
                return []
            self._unreachable_noted = True
            return [Action("note", None, None, f"budget unreachable: paused and still {why}", figures)]
        b = self.budgets
        current = fps if fps is not None and fps > 0 else self.knobs.rate_limit
        wanted = math.inf
        if current:
            if verdict.power_over:
                dyn = power - self.baseline_w
                wanted = current * max(0.0, TARGET * b.power_w - self.baseline_w) / dyn if dyn > 0 else 0.0
            if verdict.thermal_over:
                wanted = min(wanted, current * THERMAL_CUT)
        else:
            wanted = 0.0
        if wanted >= b.min_fps:
            return [self._set("rate_limit", _round_fps(wanted), why, figures, obs.now)]
        if self.knobs.rate_limit is None or self.knobs.rate_limit > b.min_fps * 1.001:
            return [self._set("rate_limit", b.min_fps, why + f" (rate floor min_fps {b.min_fps:g})", figures, obs.now)]
        if self.level + 1 < len(self._ladder):
            if self._unconfirmed(obs, power, verdict):
                return []
            return self._step_down(obs, power, fps, why, figures)
        # the cheapest level at min_fps and still over: a rate below min_fps (a few frames beat
        # none), then a pause
        if self.knobs.rate_limit is not None and self.knobs.rate_limit >= b.min_fps * 0.999 and power is not None:
            self._floor_power[self._ladder[self.level]] = power
        if wanted >= PAUSE_BELOW_FPS and self.knobs.rate_limit is not None:
            return [self._set("rate_limit", _round_fps(wanted), why + f" at the cheapest setting (below min_fps {b.min_fps:g})",
                              figures, obs.now)]
        if power is not None:
            self._floor_power.setdefault(self._ladder[self.level], power)
        self._paused_rate = self.knobs.rate_limit
        return [self._set("paused", True, why + " at the cheapest setting", figures, obs.now)]

    def _unconfirmed(self, obs: Observation, power: float | None, verdict: Verdict) -> bool:
        """A slight excess of power alone (no heat) has not lasted long enough to give up accuracy for."""
        b = self.budgets
        if verdict.thermal_over or power is None or b.power_w is None or power > b.power_w * (1 + STEP_MARGIN):
            return False
        if self._marginal_since is None:
            self._marginal_since = obs.now
        return obs.now - self._marginal_since < CONFIRM_PERIODS * self.period_s

    def _step_down(self, obs: Observation, power: float | None, fps: float | None, why: str, figures: dict) -> list[Action]:
        level = self.level
        here = self._ladder[level]
        if power is not None:
            self._floor_power[here] = power
        up_at = self._stepped_up_at.get(here)
        if up_at is not None and obs.now - up_at < RECENT_S:
            _, backoff = self._retry.get(here, (0.0, RETRY_FIRST_S))
            self._retry[here] = (obs.now + backoff, min(RETRY_MAX_S, backoff * 2))
        target = level + 1
        if power is not None and fps and self.budgets.power_w is not None:
            # measured costs: the most accurate level below predicted to fit at min_fps, in one step
            for i in range(level + 1, len(self._ladder)):
                predicted = self._predict(self._ladder[i], power, fps)
                if predicted is None:
                    break
                target = i
                if predicted <= TARGET * self.budgets.power_w:
                    figures = {**figures, "predicted_w": round(predicted, 3)}
                    break
        return self._go_to(self._ladder[target], why, self._step_figures(figures, self._ladder[target]), obs.now)

    def _predict(self, target: Level, power: float, fps: float) -> float | None:
        """Power at min_fps on `target`, from the power now and the costs' ratio (None: costs not measured)."""
        here, there = self._variants[self.knobs.variant], self._variants[target.variant]
        if "rank" in (here.cost_source, there.cost_source) or here.cost <= 0 or fps <= 0:
            return None
        per_frame = max(0.0, power - self.baseline_w) / fps
        return self.baseline_w + per_frame * self.budgets.min_fps * there.cost / here.cost

    def _step_figures(self, figures: dict, target: Level) -> dict:
        here, there = self._variants[self.knobs.variant], self._variants[target.variant]
        return {**figures, "costs": self.cost_source,
                "from": {"variant": here.name, "threads": self.knobs.threads, "cost": round(here.cost, 3), "fidelity": here.fidelity},
                "to": {"variant": there.name, "threads": target.threads, "cost": round(there.cost, 3), "fidelity": there.fidelity}}

    def _go_to(self, target: Level, why: str, figures: dict, now: float) -> list[Action]:
        actions = []
        if target.variant != self.knobs.variant:
            actions.append(self._set("variant", target.variant, why, figures, now))
        if target.threads != self.knobs.threads:
            actions.append(self._set("threads", target.threads, why, figures, now))
        return actions

    # -- stepping back up ----------------------------------------------------------------------

    def _restore(self, obs: Observation, power: float | None, fps: float | None) -> list[Action]:
        b = self.budgets
        figures = self._figures(obs, power, fps)
        level = self.level
        below = self.knobs.rate_limit is not None and self.knobs.rate_limit < b.min_fps * 0.999
        if level > 0 and not (below and not self.knobs.paused):  # the rate below min_fps comes back first
            target = self._ladder[level - 1] if not self.knobs.paused else self._ladder[-1]
            fits, predicted = self._may_restore(target, power, fps, obs.now)
            if fits and obs.now - (self._headroom_since or obs.now) < self.period_s:
                return []  # headroom, but not yet for long: hold (raising the rate would use it up)
            if fits:
                self._stepped_up_at[target] = obs.now
                why = self._headroom_reason(target, power, predicted)
                if self.knobs.paused:
                    resume = min(b.min_fps, self._paused_rate or b.min_fps)
                    return [self._set("paused", False, why, figures, obs.now),
                            self._set("rate_limit", resume, why + " (resume from the rate before the pause)", figures, obs.now)]
                actions = self._go_to(target, why, self._step_figures(figures, target), obs.now)
                if self.knobs.rate_limit is None or self.knobs.rate_limit > b.min_fps:
                    actions.append(self._set("rate_limit", b.min_fps, why + " (restart from min_fps)", figures, obs.now))
                return actions
        if self.knobs.paused or self.knobs.rate_limit is None:
            return []
        limit = self.knobs.rate_limit
        reached = fps if fps is not None else limit
        reached_moving = reached  # the rate while there is motion to look at
        active = self.last_means.get("active")
        if active is not None:
            if active < ACTIVE_ENOUGH:
                # Little moved: the gate held the rate down, not the limit. Keep the limit for
                # when motion returns; nothing here says it would fit without it.
                return []
            reached_moving = reached / active
        if reached_moving < 0.85 * limit:
            return [self._set("rate_limit", None, f"rate limit {limit:g} fps no longer binding (reached {reached_moving:.1f} fps)", figures, obs.now)]
        if b.power_w is not None and power is not None and power > self.baseline_w:
            wanted = reached * (TARGET * b.power_w - self.baseline_w) / (power - self.baseline_w)
        else:
            wanted = reached / THERMAL_CUT
        wanted = min(wanted, reached_moving * RAISE_MAX)
        if below:
            wanted = min(wanted, b.min_fps)  # back to min_fps, then the ladder decides
        if wanted <= limit * 1.02:
            return []
        why = f"headroom: power {power:.2f} W of {b.power_w:g} W" if b.power_w is not None and power is not None else "headroom: temperature back under budget"
        return [self._set("rate_limit", _round_fps(wanted), why, figures, obs.now)]

    def _may_restore(self, target: Level, power: float | None, fps: float | None, now: float) -> tuple[bool, float | None]:
        """Whether `target` fits at min_fps, and its predicted power when that is what says so."""
        not_before, _ = self._retry.get(target, (-math.inf, 0.0))
        if now < not_before:
            return False, None
        b = self.budgets
        if b.power_w is None:
            return True, None  # temperature alone: cool enough was already checked
        floor = self._floor_power.get(target)
        if floor is not None:
            return floor <= RESTORE_AT * b.power_w, None
        if power is not None and fps and not self.knobs.paused:
            predicted = self._predict(target, power, fps)
            if predicted is not None:
                return predicted <= RESTORE_AT * b.power_w, predicted
        # Never measured there, costs unknown: try it only with the rate at its maximum and room to spare.
        return self.knobs.rate_limit is None and power is not None and power <= RESTORE_AT * b.power_w, None

    def _headroom_reason(self, target: Level, power: float | None, predicted: float | None = None) -> str:
        floor = self._floor_power.get(target)
        if self.budgets.power_w is not None and floor is not None:
            return f"headroom: {target.variant} with {target.threads} thread(s) drew {floor:.2f} W at min_fps, budget now {self.budgets.power_w:g} W"
        if self.budgets.power_w is not None and predicted is not None:
            return (f"headroom: {target.variant} with {target.threads} thread(s) predicted at {predicted:.2f} W at min_fps "
                    f"({self.cost_source} costs), budget {self.budgets.power_w:g} W")
        return f"headroom: power {power if power is not None else float('nan'):.2f} W, temperature under budget"

    # -- memory ---------------------------------------------------------------------------------
    # Memory is held where the variant is chosen, before loading (`pick_variant`), not by swapping:
    # a swap in a running process does not give memory back (measured on the person bundle: the
    # daemon at 154 MB on float32 went to 167-174 MB after swapping to int8, which starts fresh at
    # 125 MB). So a soft breach sheds caches and buffers, and a hard breach exits with its own code
    # so systemd restarts the service clean, where the choice at load applies again.

    def _memory(self, obs: Observation) -> list[Action]:
        b = self.budgets
        actions = self._unfit_loaded()
        rss = obs.rss_mb
        if rss is None:
            return actions
        figures = {"rss_mb": round(rss, 1), "memory_mb": b.memory_mb, "memory_hard_mb": b.memory_hard_mb}
        if b.memory_hard_mb is not None and rss > b.memory_hard_mb:
            self.state["memory"] = "hard-limit"
            if not self._hard_fired:
                self._hard_fired = True
                actions.append(Action("hard_limit", True, False,
                                      f"RSS {rss:.0f} MB over the hard memory budget {b.memory_hard_mb:g} MB: exiting for a clean restart", figures))
            return actions
        if b.memory_mb is None or rss <= b.memory_mb:
            self.state["memory"] = "ok" if b.memory_mb is not None else "no budget"
            return actions
        self.state["memory"] = "over"
        if obs.now - self._shed_at >= SHED_EVERY_S:
            self._shed_at = obs.now
            actions.append(Action("shed_caches", True, None, f"RSS {rss:.0f} MB over the memory budget {b.memory_mb:g} MB", figures))
        return actions

    def _unfit_loaded(self) -> list[Action]:
        """Say so, once per budget, when the loaded variant's measured footprint exceeds the budget
        (a config that named it, or a daemon that did not ask `pick_variant`)."""
        if self._fit_checked:
            return []
        self._fit_checked = True
        here = self._variants[self.knobs.variant]
        mem = self.budgets.memory_mb
        if fits(here, mem):
            return []
        choice, why = pick_variant(self._variants.values(), here.name, mem)
        return [Action("note", None, None, f"variant {here.name} is loaded but {why}: restart to load {choice}",
                       {"memory_mb": mem, "peak_rss_mb": here.peak_rss_mb})]

    # -- bookkeeping ----------------------------------------------------------------------------

    def _set(self, knob: str, value: Any, reason: str, figures: dict, now: float) -> Action:
        previous = getattr(self.knobs, knob)
        setattr(self.knobs, knob, value)
        self._changed_at = now
        self._samples = []
        self._marginal_since = None
        if knob != "rate_limit":
            self._prev_point = None  # a different level: the secant must not mix two
        return Action(knob, value, previous, reason, figures)

    def refused(self, action: Action, error: str) -> None:
        """The actuator could not apply `action` (a variant that failed to load): undo it, and never
        try that variant again until a reload."""
        setattr(self.knobs, action.knob, action.previous)
        if action.knob == "variant":
            self.banned[action.value] = f"failed to load: {error}"
            self._rebuild_ladder()

    def status(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "levels": len(self._ladder),
            "steps": [{"variant": lv.variant, "threads": lv.threads, "cost": round(self._variants[lv.variant].cost, 3),
                       "fidelity": self._variants[lv.variant].fidelity} for lv in self._ladder],
            "costs": self.cost_source,  # board: measured here; bundle: the converter's figures; rank: guessed
            "state": dict(self.state),
            "baseline_w": round(self.baseline_w, 3),
            "baseline_floor_w": self._baseline_floor,
            "banned": dict(self.banned),
            "period_s": self.period_s,
            "ladder": self.ladder_names(),
            "floor_w": {f"{lv.variant}/{lv.threads}t": round(w, 3) for lv, w in self._floor_power.items()},
        }


def _round_fps(fps: float) -> float:
    return round(fps, 2) if fps < 10 else round(fps, 1)
