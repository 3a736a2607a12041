"""The accuracy-versus-efficiency trade-off at a glance: one point per variant, as a PNG."""

from __future__ import annotations

from pathlib import Path


def plot(report: dict, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = report["variants"]
    metric = variants[0]["fidelity"]["metric"] if variants else "fidelity"
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), constrained_layout=True)
    for ax, key, label in ((axes[0], "size_ratio", "size (ratio to float32)"), (axes[1], "latency_ms", "invoke latency (ms)")):
        for i, v in enumerate(variants):
            y = v["fidelity"]["value"]
            if y is None:
                continue
            ax.scatter(v[key], y, s=40, marker="o" if v.get("shipped", True) else "x")
            # alternate label heights: variants of one size (int8, int8-postprocess) sit on each other
            ax.annotate(v["name"], (v[key], y), textcoords="offset points", xytext=(5, 4 if i % 2 else -10), fontsize=8)
        ax.set_xlabel(label)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    threads = {v["threads"] for v in variants}
    fig.suptitle(f"{report.get('source', {}).get('file', '')}: fidelity vs size and latency "
                 f"({'/'.join(map(str, sorted(threads)))} thread(s); x: measured, not shipped)", fontsize=10)
    out = Path(out)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
