"""`edgewatch bench MODEL`: what a model costs on this board, measured, per thread count.

Init time, first invoke, invoke latency percentiles over N runs on real frames, preprocess and
decode + NMS time per frame, peak RSS; `--cold` adds import-to-first-detection in a fresh process;
`--variant all` measures every variant of a bundle in the same run, so their ratios are fair on a
shared, noisy machine. `--pipeline` measures the daemon's pipeline instead (runtime/bench/pipeline.py),
`--motion` what motion gating saves (runtime/bench/motion.py), `--regions` whether crops around
motion find more small people (runtime/bench/regions.py), `--tracking` the tracker (runtime/bench/tracking/), `--web` what the local page costs it
(runtime/bench/web.py).
"""

from __future__ import annotations

import argparse
import importlib
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .. import exitcodes
from .arguments import number, thread_counts

DEFAULT_INPUT = Path(__file__).resolve().parents[1] / "assets" / "vtest.avi"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", help="bundle folder, model.json or .tflite (default: the bundled person model)")
    p.add_argument("--threads", type=thread_counts, default=None, help="thread counts, comma separated (default: 1 and all cores)")
    p.add_argument("--runs", type=number(integer=True, ge=1, le=1_000_000), default=100, help="timed invokes per thread count (default 100)")
    p.add_argument("--warmup", type=number(integer=True, ge=0, le=10_000), default=5, help="untimed invokes first (default 5)")
    p.add_argument("--variant", default=None, help="bundle variant, or 'all' (default: the bundle's default)")
    p.add_argument("--input", default=None, help="image or video to take frames from (default: the bundled video)")
    p.add_argument("--labels", help="labels file for a bare .tflite")
    p.add_argument("--cold", action="store_true", help="also measure import-to-first-detection in a fresh process")
    p.add_argument("--json", action="store_true", help="one JSON object per measurement")
    p.add_argument("--pipeline", action="store_true", help="benchmark the daemon's pipeline instead: vs raw invoke and a naive loop, frame age, RSS growth")
    p.add_argument("--save", action="store_true",
                   help="keep the figures where the daemon uses them (the state folder): every variant in a fresh process, "
                        "or with --pipeline the pipeline's rate per thread count (the daemon then runs at the best)")
    p.add_argument("--state-dir", default=None, help="--save: the daemon's state folder (default: as the daemon chooses)")
    p.add_argument("--ladder", action="store_true",
                   help="the ladder's proof: the daemon on the video under power budgets, with the ladder and rate-only (runtime/bench/ladder.py)")
    p.add_argument("--budgets", default=None, help="--ladder: budgets as percentages of the unconstrained draw (default 100,60,35)")
    p.add_argument("--min-fps", type=number(gt=0, le=1000), default=None, help="--ladder: the rate the application needs (default 0.8 x the video's)")
    p.add_argument("--settle", type=number(ge=0, le=3600), default=25.0, help="--ladder: seconds left out of each run's power and fps means (default 25)")
    p.add_argument("--web", action="store_true", help="benchmark the local page's cost instead: pipeline fps with live viewers and /metrics scrapes vs none")
    p.add_argument("--viewers", type=number(integer=True, ge=1, le=100), default=5, help="--web: live viewers in the loaded phases (default 5)")
    p.add_argument("--motion", action="store_true",
                   help="benchmark motion gating instead: empty/busy/empty footage from the input video, the pipeline with gating off and on")
    p.add_argument("--regions", action="store_true",
                   help="measure crops around motion instead: recall of small (distant) people, whole frame vs regions; "
                        "with --motion: run the gated pipeline with regions on")
    p.add_argument("--annotate", metavar="OUT", help="--motion: also write the light-step clip with motion boxes drawn (an AVI)")
    p.add_argument("--tracking", action="store_true",
                   help="benchmark the tracker instead: TUD-Stadtmitte ground truth, events on real footage, cost; "
                        "beside ByteTrack and norfair when installed")
    p.add_argument("--seeds", type=number(integer=True, ge=1, le=1000), default=5,
                   help="--tracking: simulated detector seeds on the ground truth (default 5)")
    p.add_argument("--trackers", default="edgewatch,bytetrack,norfair",
                   help="--tracking: which trackers (default: edgewatch,bytetrack,norfair; peers run when installed)")
    p.add_argument("--frames", type=number(integer=True, ge=1, le=10_000_000), default=None,
                   help="--pipeline: frames for the long RSS run; --regions, --tracking: frames of the video")
    p.add_argument("--seconds", type=number(gt=0, le=86_400), default=None,
                   help="--pipeline, --web: seconds per phase; --motion: seconds of each empty part (default 60); "
                        "--ladder: seconds of each run, the video looped (default: once through)")
    p.add_argument("--soak", metavar="DURATION", help="the daemon's RSS over DURATION (30m, 1h) at full speed: growth per hour")
    p.add_argument("--plot", metavar="PNG", help="--soak: draw the RSS curve (needs matplotlib)")


def _default_model() -> str:
    return str(Path(__file__).resolve().parents[1] / "assets" / "person-ssdlite")


def _load_frames(path: Path, count: int) -> list[np.ndarray]:
    import cv2

    from ..errors import CommandError

    image = cv2.imread(str(path), cv2.IMREAD_COLOR) if path.suffix.lower() not in {".avi", ".mp4", ".mkv", ".mov"} else None
    if image is not None:
        return [image]
    cap = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < count:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    if not frames:
        raise CommandError(f"{path}: no frames (not a readable image or video)")
    return frames


def _percentiles(values: list[float]) -> dict[str, float]:
    a = np.asarray(values)
    return {
        "p50": round(float(np.percentile(a, 50)), 3),
        "p90": round(float(np.percentile(a, 90)), 3),
        "p99": round(float(np.percentile(a, 99)), 3),
        "mean": round(float(a.mean()), 3),
    }


def peak_rss_mb() -> float:
    # VmHWM is this process's own high-water mark. ru_maxrss is not: Linux carries it across
    # fork + exec, so a bench started by a big parent (the converter, holding TensorFlow)
    # would report the parent's peak.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure(model: str, variant: str | None, threads: int, frames: list[np.ndarray], runs: int, warmup: int, labels: str | None) -> dict:
    from ..detector import Detector, DetectorOptions

    t0 = time.perf_counter()
    det = Detector.create_from_options(DetectorOptions(model, variant, threads, labels=labels))
    init_ms = (time.perf_counter() - t0) * 1e3
    for warning in det.warnings:  # a fast model that finds nothing is not a result
        print(f"edgewatch bench: warning: {warning}", file=sys.stderr)
    tensors = [det.preprocessor(f)[0].copy() for f in frames[: max(1, min(len(frames), runs))]]
    t0 = time.perf_counter()
    det.model.set_input(tensors[0])
    det.model.invoke()
    first_ms = (time.perf_counter() - t0) * 1e3
    for i in range(warmup):
        det.infer(tensors[i % len(tensors)])
    invoke, decode, pre, found = [], [], [], 0
    cpu0 = time.process_time()
    for i in range(runs):
        frame = frames[i % len(frames)]
        d = det.detect(frame)
        found += len(d)
        pre.append(det.timings.preprocess_ms)
        invoke.append(det.timings.invoke_ms)
        decode.append(det.timings.decode_ms)
    cpu_ms = (time.process_time() - cpu0) * 1e3 / runs
    # invokes only, on CPU time: on a shared machine wall time measures the neighbours too
    cpu0 = time.process_time()
    for i in range(runs):
        det.model.set_input(tensors[i % len(tensors)])
        det.model.invoke()
    invoke_cpu_ms = (time.process_time() - cpu0) * 1e3 / runs
    inv = _percentiles(invoke)
    dec = _percentiles(decode)
    return {
        "model": str(det.variant.file),
        "variant": det.variant.name,
        "backend": det.model.engine,
        "threads": threads,
        "input": {"dtype": str(det.model.input.dtype), "layout": det.model.input_layout, "passthrough": det.preprocessor.passthrough},
        "warnings": det.warnings,
        "size_bytes": det.model.size_bytes,
        "init_ms": round(init_ms, 3),
        "first_invoke_ms": round(first_ms, 3),
        "invoke_ms": inv,
        "preprocess_ms": _percentiles(pre),
        "decode_ms": dec,
        "decode_share_of_invoke": round(dec["mean"] / inv["mean"], 4) if inv["mean"] else None,
        "invoke_cpu_ms": round(invoke_cpu_ms, 3),
        "frame_cpu_ms": round(cpu_ms, 3),
        "detections_per_frame": round(found / max(runs, 1), 2),
        "runs": runs,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


_COLD = """
import sys, time
t0 = time.perf_counter()
import cv2
from runtime.detector import Detector, DetectorOptions
frame = cv2.imread(sys.argv[2]) if not sys.argv[2].endswith('.avi') else cv2.VideoCapture(sys.argv[2]).read()[1]
t1 = time.perf_counter()
d = Detector.create_from_options(DetectorOptions(sys.argv[1], sys.argv[3] or None))
n = len(d.detect(frame))
t2 = time.perf_counter()
print(f"{(t1 - t0) * 1e3:.1f} {(t2 - t0) * 1e3:.1f} {n}")
"""


def measure_cold(model: str, variant: str | None, source: Path) -> dict:
    """Import-to-first-detection in a fresh interpreter: what a restarted service pays."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _COLD, model, str(source), variant or ""], capture_output=True, text=True, check=True)
    process_ms = (time.perf_counter() - start) * 1e3
    imports_ms, first_ms, n = out.stdout.split()
    return {
        "measure": "cold_start",
        "import_ms": float(imports_ms),
        "import_to_first_detection_ms": float(first_ms),
        "process_wall_ms": round(process_ms, 1),
        "detections": int(n),
    }


def _print_table(rows: list[dict]) -> None:
    print(f"{'variant':<16} {'thr':>3} {'init':>7} {'first':>7} {'p50':>7} {'p90':>7} {'p99':>7} {'cpu/inv':>7} "
          f"{'pre':>6} {'decode':>6} {'dec/inv':>7} {'rss MB':>6}  backend   (ms)")
    for r in rows:
        inv = r["invoke_ms"]
        print(
            f"{r['variant']:<16} {r['threads']:>3} {r['init_ms']:>7.1f} {r['first_invoke_ms']:>7.1f} {inv['p50']:>7.2f} {inv['p90']:>7.2f} "
            f"{inv['p99']:>7.2f} {r['invoke_cpu_ms']:>7.2f} {r['preprocess_ms']['p50']:>6.2f} {r['decode_ms']['p50']:>6.2f} "
            f"{r['decode_share_of_invoke']:>7.1%} {r['peak_rss_mb']:>6.1f}  {r['backend']}"
        )


# Benchmarks of something other than one model: (flag, module under runtime/bench, its runner).
# Imported only when asked for, so `bench MODEL` does not load them.
_OTHER_BENCHES = (
    ("ladder", "ladder", "run_ladder_bench"),
    ("pipeline", "pipeline", "run_pipeline_bench"),
    ("soak", "soak", "run_soak"),
    ("web", "web", "run_web_bench"),
    ("tracking", "tracking", "run_tracking_bench"),
    ("motion", "motion", "run_motion_bench"),
    ("regions", "regions", "run_regions_bench"),
)


def run(args: argparse.Namespace) -> int:
    from ..errors import CommandError
    from ..interpreter import default_threads

    for flag, module, runner in _OTHER_BENCHES:
        if getattr(args, flag):
            return getattr(importlib.import_module(f"..bench.{module}", __package__), runner)(args)
    if args.annotate:
        raise CommandError("--annotate: goes with --motion")
    model = args.model or _default_model()
    if args.save:
        from ..bench.board import run_board_bench

        return run_board_bench(args, model, args.threads)
    threads = args.threads or sorted({1, default_threads()})
    source = Path(args.input) if args.input else DEFAULT_INPUT
    frames = _load_frames(source, min(args.runs, 50))
    variants: list[str | None] = [args.variant]
    if args.variant == "all":
        from ..bundle import find_manifest, load_manifest

        manifest = find_manifest(Path(model))
        if manifest is None:
            raise CommandError("--variant all: needs a bundle folder or model.json")
        variants = [v.name for v in load_manifest(manifest).variants]
    rows = []
    for variant in variants:
        for t in threads:
            row = measure(model, variant, t, frames, args.runs, args.warmup, args.labels)
            rows.append(row)
            if args.json:
                print(json.dumps(row), flush=True)
    if not args.json:
        _print_table(rows)
        if len(variants) > 1:
            base = next((r for r in rows if r["variant"] == "float32" and r["threads"] == threads[-1]), None)
            if base:
                for r in rows:
                    if r["threads"] == threads[-1] and r is not base:
                        print(
                            f"{r['variant']} vs float32 at {r['threads']} threads: latency p50 x{r['invoke_ms']['p50'] / base['invoke_ms']['p50']:.2f}, "
                            f"CPU per invoke x{r['invoke_cpu_ms'] / base['invoke_cpu_ms']:.2f}, size x{r['size_bytes'] / base['size_bytes']:.2f}"
                        )
    if args.cold:
        cold = measure_cold(model, variants[0], source)
        if args.json:
            print(json.dumps(cold))
        else:
            print(f"import-to-first-detection: {cold['import_to_first_detection_ms']:.0f} ms "
                  f"(imports {cold['import_ms']:.0f} ms; whole process {cold['process_wall_ms']:.0f} ms)")
    return exitcodes.OK
