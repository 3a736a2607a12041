"""Is one resizable file as good as a file per size? Measured on the person detector, in one run.

    python -m converters.size_files [--sizes 300,224,160] [--quantize int8,none] [--samples 50] [--held-out 30]

Converts the model twice with the same sizes: `--size-files shared` (one file per quantization, its
input size free, resized at run time) and `--size-files separate` (a file per size, int8
calibrated at that size). Then, per variant: the boxes of the two on the held-out frames (the
largest corner difference in pixels over matched boxes, boxes found by one and not the other), the
fidelity of each, their invoke latency measured in interleaved rounds, and the bytes on disk of
each bundle. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from .build_assets import VIDEOS, person_graph


def _compare(a, b) -> dict:
    """Boxes of two detectors' Detections on the same frames: matched by IoU, corner differences in px."""
    from runtime.detections import box_iou

    worst, unmatched, matched = 0.0, 0, 0
    for da, db in zip(a, b):
        if len(da) == 0 or len(db) == 0:
            unmatched += len(da) + len(db)
            continue
        iou = box_iou(da.xyxy, db.xyxy)
        for i in range(len(da)):
            j = int(np.argmax(iou[i]))
            if iou[i, j] >= 0.5:
                matched += 1
                worst = max(worst, float(np.abs(da.xyxy[i] - db.xyxy[j]).max()))
            else:
                unmatched += 1
    return {"matched": matched, "unmatched": unmatched, "max_corner_px": round(worst, 2)}


def main(argv: list[str] | None = None) -> int:
    from runtime.detector import Detector, DetectorOptions

    from . import measure
    from .conversion import ConvertOptions, convert
    from .progress import Progress
    from .samples import load_samples
    from .sizes import parse_size

    parser = argparse.ArgumentParser(prog="python -m converters.size_files", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="300,224,160")
    parser.add_argument("--quantize", default="int8,none")
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--held-out", type=int, default=30)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    video = next(v for v in VIDEOS if v.is_file())
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    reports, bundles = {}, {}
    with tempfile.TemporaryDirectory(prefix="edgewatch-size-files-") as tmp:
        for files in ("shared", "separate"):
            out = Path(tmp) / files
            reports[files] = convert(ConvertOptions(
                source=person_graph(), output=out, calibration=video, quantize=args.quantize.split(","), samples=args.samples,
                held_out=args.held_out, runs=3, threads=args.threads, labels=["person"], sizes=sizes, size_files=files), Progress())
            bundles[files] = out
        held = load_samples(video, 1, args.held_out).held_out
        names = [v["name"] for v in reports["shared"]["variants"]]
        rows = []
        for name in names:
            dets = {f: Detector.create_from_options(DetectorOptions(bundles[f], variant=name, threads=args.threads)) for f in bundles}
            found = {f: [d.detect(frame) for frame in held] for f, d in dets.items()}
            targets = [(d.variant.file, d.bundle.input_for(d.variant)) for d in dets.values()]
            lat = measure.latencies(targets, held[0], args.threads, runs=args.runs)
            fid = {f: next(v["fidelity"]["value"] for v in reports[f]["variants"] if v["name"] == name) for f in bundles}
            rows.append({"variant": name, **_compare(found["shared"], found["separate"]),
                         "fidelity_shared": fid["shared"], "fidelity_separate": fid["separate"],
                         "ms_shared": lat[0]["latency_min_ms"], "ms_separate": lat[1]["latency_min_ms"],
                         "cpu_ms_shared": lat[0]["cpu_ms"], "cpu_ms_separate": lat[1]["cpu_ms"]})
        disk = {f: sum(p.stat().st_size for p in b.iterdir()) for f, b in bundles.items()}
    if args.json:
        print(json.dumps({"rows": rows, "bundle_bytes": disk}))
        return 0
    print(f"\n{'variant':<14} {'matched':>7} {'unmatched':>9} {'max px':>6} {'fid shared':>10} {'fid separate':>12} "
          f"{'ms shared':>9} {'ms separate':>11} {'cpu shared':>10} {'cpu separate':>12}")
    for r in rows:
        print(f"{r['variant']:<14} {r['matched']:>7} {r['unmatched']:>9} {r['max_corner_px']:>6.2f} {r['fidelity_shared']:>10} "
              f"{r['fidelity_separate']:>12} {r['ms_shared']:>9.2f} {r['ms_separate']:>11.2f} {r['cpu_ms_shared']:>10.2f} {r['cpu_ms_separate']:>12.2f}")
    print(f"bundle on disk: shared {disk['shared'] / 1e6:.2f} MB, separate {disk['separate'] / 1e6:.2f} MB "
          f"(held-out frames {len(held)}, {args.threads} thread(s), latency: min of {args.runs} interleaved invokes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
