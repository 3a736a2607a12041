"""The pruning sweep: every method at every sparsity, measured before and after distillation, and
the points worth shipping.

Methods: the three that zero single weights (prune.py: global, layer, random; sparsity = the share
of the kernels' weights zeroed) and `channel`, which removes that share of every block's expanded
channels (network.narrowed: the network gets narrower, so it also runs faster).

Each point's fidelity is measured as the variants' is (the runtime loads it as a float32 TFLite
file, mAP@0.5 or cosine against the source on the held-out frames), through the `measure` callback
the conversion passes in. The point shipped is the sparsest one (after distillation, or before when
distillation did not help) whose fidelity reaches the threshold, one of the zeroing methods (a
smaller file) and one of `channel` (a faster network); none of a kind when no point of it does.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from ..progress import Progress
from ..report import fidelity_text
from ..sources import SourceModel
from .distill import LEARNING_RATE, NEAR_LEARNING_RATE, distill, examples, loss_function
from .network import FrozenNetwork
from .prune import METHODS as ZEROING, apply, masks

CHANNEL = "channel"
METHODS = (*ZEROING, CHANNEL)
METHOD_LABELS = {"global": "global magnitude", "layer": "layer-wise magnitude", "random": "random", CHANNEL: "channels"}
SPARSITIES = (0.3, 0.5, 0.7, 0.8, 0.9)
ACTIVITY_FRAMES = 64  # calibration frames whose pixels give the channels' covariance
MIN_FIDELITY = 0.95  # the point shipped, when --min-fidelity does not say


@dataclass
class PruneOptions:
    methods: list[str] = field(default_factory=lambda: list(METHODS))
    sparsities: list[float] = field(default_factory=lambda: list(SPARSITIES))
    distill_steps: int = 100
    distill_seconds: float | None = None
    min_fidelity: float = MIN_FIDELITY
    methods_asked: bool = False  # named by the user: a method the network cannot take is an error, not skipped


@dataclass
class Chosen:
    kind: str  # pruned (weights zeroed) | channels (channels removed)
    name: str  # the variants' name stem: <kind><percent>
    source: SourceModel
    point: dict


@dataclass
class SweepResult:
    points: list[dict]
    chosen: list[Chosen]  # per kind (zeros, channels), the sparsest point that reaches the threshold
    why: str  # which points, or why none
    weights: dict  # counts: prunable, first layer (dense), other


def pruned_source(source: SourceModel, network: FrozenNetwork, values: dict[str, np.ndarray]) -> SourceModel:
    """The source with its kernels replaced: same input, outputs, head and reference, own size only."""
    function, trackable = network.function(values)
    head = replace(source.head, function=None, scored_function=None) if source.head is not None else None
    return replace(source, function=function, trackable=trackable, head=head, resized=None, any_size=None,
                   fixed_size="a pruned variant is built at the source's own input size")


def _fidelity_value(fid: dict) -> float:
    return -1.0 if fid.get("value") is None else float(fid["value"])


def _pruned(network: FrozenNetwork, source_kernels: dict[str, np.ndarray], method: str, sparsity: float, activity):
    """(network, its kernels, their masks, weights removed) at one point of the sweep."""
    if method == CHANNEL:
        narrow, removed = network.narrowed(sparsity, activity)
        values = narrow.values()
        return narrow, values, {k: np.ones(v.shape, bool) for k, v in values.items()}, removed
    keep = masks(source_kernels, method, sparsity)
    return network, apply(source_kernels, keep), keep, sum(int(k.size - np.count_nonzero(k)) for k in keep.values())


def sweep(source: SourceModel, function, train: list[np.ndarray], held_out: list[np.ndarray], options: PruneOptions,
          measure: Callable[[SourceModel, str], dict], progress: Progress) -> SweepResult:
    """`function`: the source's network (what the variants convert); `train`/`held_out`: its
    preprocessed float32 inputs for distillation; `measure(source, name)`: a fidelity dict."""
    network = FrozenNetwork.of(function, source.path)
    methods, skipped = list(options.methods), ""
    if CHANNEL in methods and not network.blocks():
        if options.methods_asked:
            network.require_blocks()  # refused now, in one line, not after the other methods ran
        methods.remove(CHANNEL)
        skipped = "channel pruning skipped: no expand -> depthwise -> project blocks"
    activity = network.channel_activity(train[:ACTIVITY_FRAMES]) if CHANNEL in methods else None
    source_kernels = network.values()
    total = network.weights
    loss = loss_function(source.head)
    train_examples, held_examples = (examples(function, train), examples(function, held_out)) if options.distill_steps else ([], [])
    points: list[dict] = []
    best: dict[str, tuple[tuple, Chosen]] = {}
    for method in methods:
        for sparsity in options.sparsities:
            label = f"{method}{round(sparsity * 100)}"
            progress.step(f"pruning: {METHOD_LABELS[method]} at {sparsity:.0%}")
            net, values, keep, removed = _pruned(network, source_kernels, method, sparsity, activity)
            pruned = pruned_source(source, net, values)
            before = measure(pruned, label)
            point = {"method": method, "sparsity": sparsity, "removed": removed, "sparsity_total": round(removed / total, 4),
                     "compression": round(total / (total - removed), 3), "fidelity_pruned": before}
            candidates = [(before, pruned, "pruned")]
            if options.distill_steps > 0:
                result = distill(net, values, keep, loss, train_examples, held_examples, steps=options.distill_steps,
                                 seconds=options.distill_seconds, progress=progress, label=label,
                                 learning_rate=NEAR_LEARNING_RATE if method == CHANNEL else LEARNING_RATE)
                point["distill"] = result.to_json()
                if result.steps:  # else the time limit allowed no step: nothing new to measure
                    distilled = pruned_source(source, net, result.values)
                    after = measure(distilled, label + "-distilled")
                    point["fidelity_distilled"] = after
                    candidates.append((after, distilled, "distilled"))
            points.append(point)
            kind = "channels" if method == CHANNEL else "pruned"
            for fid, model, state in candidates:
                key = (sparsity, _fidelity_value(fid))
                if _fidelity_value(fid) >= options.min_fidelity and (kind not in best or key > best[kind][0]):
                    chosen = Chosen(kind, f"{kind}{round(sparsity * 100)}", model,
                                    {"method": method, "sparsity": sparsity, "state": state, "fidelity": fid["value"]})
                    best[kind] = (key, chosen)
            progress.step(f"pruning: {label}: {fidelity_text(before)}"
                          + (f", distilled {fidelity_text(point['fidelity_distilled'])}" if "fidelity_distilled" in point else ""))
    weights = {"prunable": network.prunable, "first_layer": network.first_layer, "other": network.other}
    chosen = [c for _, c in best.values()]
    why = "; ".join(f"{c.name}: the sparsest {'channel' if c.kind == 'channels' else 'zeroing'} point with fidelity "
                    f">= {options.min_fidelity} ({c.point['method']} at {c.point['sparsity']:.0%}, {c.point['state']})" for c in chosen)
    why = "; ".join(w for w in (why or f"no point reached fidelity {options.min_fidelity}", skipped) if w)
    return SweepResult(points, chosen, why, weights)
