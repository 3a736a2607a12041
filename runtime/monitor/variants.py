"""Bundle variants as the monitor sees them: cost, footprint, fidelity; which fit; in which order to step down.

Costs come from this board's own measurements when it has them for every variant (board_costs.py:
CPU milliseconds per invoke, peak RSS), else from the converter's in model.json
(`metrics.latency_ms`, `metrics.peak_rss_mb`: another machine's), and `fidelity` from model.json
(`metrics.fidelity.value`). A bundle without latencies is ordered by quantization and input size,
which is what latency follows on CPU. Costs of one ladder always come from one source, so that
they compare.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any, Iterable

log = logging.getLogger(__name__)

# Per-pixel cost rank when latencies are missing: int8 is cheapest on ARM CPUs (XNNPACK/ruy).
_QUANT_RANK = {"int8": 1.0, "dynamic": 2.0, "float16": 3.0, "none": 4.0}


COST_SOURCES = ("board", "bundle", "rank")


@dataclass(frozen=True)
class VariantInfo:
    name: str
    cost: float  # relative; only the order matters (and ratios, for a prediction when costs are measured)
    peak_rss_mb: float | None
    fidelity: float | None
    cost_source: str = "bundle"  # board: measured here; bundle: the converter's; rank: by quantization and size

    @classmethod
    def from_variant(cls, variant: Any, default_size: tuple[int, int] | None = None) -> VariantInfo:
        """From a `runtime.bundle.Variant` (duck-typed: name, quantization, input_size, metrics)."""
        metrics = getattr(variant, "metrics", None) or {}
        latency = _positive(metrics.get("latency_ms"))
        size = getattr(variant, "input_size", None) or default_size or (1, 1)
        cost = latency if latency is not None else _QUANT_RANK.get(getattr(variant, "quantization", "none"), 4.0) * size[0] * size[1] * 1e-3
        fidelity = metrics.get("fidelity")
        return cls(
            name=variant.name,
            cost=cost,
            peak_rss_mb=_positive(metrics.get("peak_rss_mb")),
            fidelity=_positive(fidelity.get("value")) if isinstance(fidelity, dict) else None,
            cost_source="bundle" if latency is not None else "rank",
        )


def variant_infos(variants: Iterable[Any], default_size: tuple[int, int] | None = None, board: Any = None,
                  threads: int = 1) -> list[VariantInfo]:
    """The monitor's view of a bundle's variants: the board's measured costs (a `BoardCosts`) when
    it has every variant, else the bundle's. Footprints: the board's where measured."""
    variants = list(variants)
    infos = [VariantInfo.from_variant(v, default_size) for v in variants]
    if board is None or not infos:
        return infos
    measured = [board.cost_ms(v.name, threads) for v in infos]
    if any(c is None for c in measured):
        return infos
    return [replace(v, cost=c, cost_source="board", peak_rss_mb=board.peak_rss_mb(v.name) or v.peak_rss_mb)
            for v, c in zip(infos, measured)]


def _positive(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else None


def fits(variant: VariantInfo, memory_mb: float | None) -> bool:
    """A variant whose measured footprint exceeds the soft memory budget is not loaded; unmeasured ones may be."""
    return memory_mb is None or variant.peak_rss_mb is None or variant.peak_rss_mb <= memory_mb


# A rung must save at least this share of the cost of the one above it: int8 on a CPU without
# int8 dot products measures within a few per cent of float32, and a step there would give up
# accuracy for noise.
MIN_STEP_SAVING = 0.10


def step_down_order(variants: Iterable[VariantInfo], top: str) -> list[VariantInfo]:
    """`top` first, then the cheaper variants by falling cost, leaving out any that is dearer than a
    cheaper one without being more accurate (stepping to it would give up frames for nothing), and
    any that saves less than MIN_STEP_SAVING over the rung above."""
    variants = list(variants)
    first = next((v for v in variants if v.name == top), None)
    if first is None:
        return []
    cheaper = sorted((v for v in variants if v.cost < first.cost), key=lambda v: -v.cost)
    order = [first]
    for i, v in enumerate(cheaper):
        below = cheaper[i + 1 :]
        if v.fidelity is not None and any(w.fidelity is not None and w.fidelity >= v.fidelity for w in below):
            continue
        if v.cost > order[-1].cost * (1 - MIN_STEP_SAVING):
            continue
        order.append(v)
    return order


def most_accurate(variants: Iterable[VariantInfo]) -> VariantInfo:
    """Highest fidelity; among equals (or unmeasured) the cheapest."""
    return max(variants, key=lambda v: (v.fidelity if v.fidelity is not None else 0.0, -v.cost))


def pick_variant(variants: Iterable[VariantInfo], preferred: str | None, memory_mb: float | None) -> tuple[str, str]:
    """The variant to load under a memory budget, and why: `preferred` if it fits, else the most
    accurate one that fits (fidelity, then cost as its proxy), else the smallest footprint.
    `preferred` None: the most accurate that fits (the top of the ladder)."""
    variants = list(variants)
    by_name = {v.name: v for v in variants}
    if preferred is None:
        fitting = [v for v in variants if fits(v, memory_mb)]
        if fitting:
            best = most_accurate(fitting)
            budget = f"fits the memory budget {memory_mb:g} MB" if memory_mb is not None else "no memory budget"
            return best.name, f"the most accurate variant ({_fidelity(best)}) and {budget}"
        preferred = most_accurate(variants).name
    want = by_name.get(preferred)
    if want is not None and fits(want, memory_mb):
        return preferred, "fits the memory budget" if memory_mb is not None else "no memory budget"
    fitting = [v for v in variants if fits(v, memory_mb)]
    too_big = f"{preferred} needs {want.peak_rss_mb:g} MB > memory budget {memory_mb:g} MB" if want is not None else f"no variant {preferred!r}"
    if fitting:
        best = most_accurate(fitting)
        return best.name, f"{too_big}; {best.name} needs {best.peak_rss_mb or 0:g} MB"
    smallest = min(variants, key=lambda v: v.peak_rss_mb or 0.0)
    log.warning("no variant fits the memory budget %s MB", memory_mb)
    return smallest.name, f"{too_big}; none fits, {smallest.name} is the smallest ({smallest.peak_rss_mb:g} MB)"


def _fidelity(v: VariantInfo) -> str:
    return f"fidelity {v.fidelity:g}" if v.fidelity is not None else "fidelity not measured"
