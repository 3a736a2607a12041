"""The accuracy-versus-efficiency trade-off at a glance: one point per variant, as a PNG.

Fidelity against latency, file size and memory (peak RSS), one panel each; the frontier of each
panel (the variants no other beats on both axes, frontier.py) joined by a line, dominated variants
drawn hollow, variants measured but not shipped as crosses. With a pruning sweep, one more panel:
fidelity against compression ratio, one line per method (dashed: pruned only; solid: distilled),
quantization's variants as points on the same axes.
"""

from __future__ import annotations

from pathlib import Path

from .frontier import AXES, mark, on_frontier

_PANELS = (("latency", "invoke latency (ms)"), ("size", "file size (MB)"), ("memory", "peak RSS (MB)"))


def _x(v: dict, axis: str) -> float | None:
    value = v.get(AXES[axis])
    if value is None:
        return None
    return value / 1e6 if axis == "size" else value


def plot(report: dict, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if any("dominated_by" not in v for v in report["variants"]):
        mark(report["variants"])  # a report written before the frontier was
    variants = [v for v in report["variants"] if v["fidelity"]["value"] is not None]
    metric = variants[0]["fidelity"]["metric"] if variants else "fidelity"
    panels = [(axis, label) for axis, label in _PANELS if any(_x(v, axis) is not None for v in variants)]
    pruning = report.get("pruning")
    count = len(panels) + (1 if pruning else 0)
    fig, axes = plt.subplots(1, count, figsize=(5 * count, 4.4), constrained_layout=True, squeeze=False)
    if pruning:
        _pruning_panel(axes[0][-1], pruning, variants, metric)
    for ax, (axis, label) in zip(axes[0], panels):
        points = [(v, _x(v, axis)) for v in variants if _x(v, axis) is not None]
        front = sorted((x, v["fidelity"]["value"]) for v, x in points if on_frontier(v, axis))
        if front:
            ax.step([x for x, _ in front], [y for _, y in front], where="post", color="tab:green", alpha=0.5, label="frontier")
        for i, (v, x) in enumerate(points):
            y = v["fidelity"]["value"]
            shipped = v.get("shipped", True)
            frontier = on_frontier(v, axis)
            ax.scatter(x, y, s=40, marker="o" if shipped else "x", color="tab:blue",
                       facecolors=("tab:blue" if frontier else "none") if shipped else None)
            # alternate label heights: variants of one cost (int8, int8-postprocess) sit on each other
            ax.annotate(v["name"], (x, y), textcoords="offset points", xytext=(5, 4 if i % 2 else -10), fontsize=7,
                        color="black" if frontier else "grey")
        ax.set_xlabel(label)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    threads = {v["threads"] for v in report["variants"]}
    fig.suptitle(f"{report.get('source', {}).get('file', '')}: fidelity vs cost "
                 f"({'/'.join(map(str, sorted(threads)))} thread(s); hollow: dominated; x: measured, not shipped)", fontsize=10)
    out = Path(out)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _pruning_panel(ax, pruning: dict, variants: list[dict], metric: str) -> None:
    colors = {"global": "tab:red", "layer": "tab:blue", "random": "tab:grey", "channel": "tab:orange"}
    for method in pruning["methods"]:
        points = [p for p in pruning["points"] if p["method"] == method]
        x = [p["compression"] for p in points]
        for key, style, suffix in (("fidelity_pruned", "--", "pruned"), ("fidelity_distilled", "-", "distilled")):
            y = [(p.get(key) or {}).get("value") for p in points]
            if any(v is not None for v in y):
                ax.plot(x, [float("nan") if v is None else v for v in y], style, marker="o", ms=3,
                        color=colors.get(method), label=f"{method} {suffix}")
    for v in variants:  # quantization: compression is the float32 file over the variant's
        if not v.get("compressed") and v.get("size_ratio") and v["quantization"] != "none":
            ax.scatter(1 / v["size_ratio"], v["fidelity"]["value"], marker="s", color="tab:green")
            ax.annotate(v["name"], (1 / v["size_ratio"], v["fidelity"]["value"]), textcoords="offset points",
                        xytext=(4, -10), fontsize=7)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("compression ratio (all weights / non-zero; quantized: float32 bytes / bytes)")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
