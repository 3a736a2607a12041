"""The accuracy-versus-efficiency trade-off at a glance: one point per variant, as a PNG.

Fidelity against latency, file size and memory (peak RSS), one panel each; the frontier of each
panel (the variants no other beats on both axes, frontier.py) joined by a line, dominated variants
drawn hollow, variants measured but not shipped as crosses.
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
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.4), constrained_layout=True, squeeze=False)
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
