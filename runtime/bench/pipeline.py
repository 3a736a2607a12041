"""`edgewatch bench --pipeline`: the daemon's pipeline measured against the model alone, in one run.

On one loaded detector (one interpreter, so the ratios compare like with like), for each thread
count:
  raw     the model's invoke rate alone (set input, invoke; nothing else);
  naive   a sequential loop: read a frame, resize, invoke, decode, repeat;
  pipeline the real pipeline (capture thread -> latest-frame slot -> inference -> tracker ->
          SQLite events), the video decoded as fast as possible.
Then, at the first thread count:
  paced   the pipeline with the video played at its own frame rate, as a camera would deliver
          it: frame age at detection (capture -> detections), p50 and p95;
  memory  RSS after warm-up, and RSS growth over `--frames` frames through the pipeline.
The thread counts are 1 to the cores by default; the daemon's setting is the one with the most
pipeline frames per second (`--save` keeps the figures in the state folder, where the daemon looks).
Targets: pipeline/raw >= 0.9; pipeline/naive >= 1.3; at the daemon's setting pipeline/raw >= 0.9
and pipeline >= 1.0 x the naive loop at its best setting; age p95 <= one invoke + one frame
interval; RSS <= 150 MB; growth < 3 MB over 10,000 frames. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import psutil

from .. import exitcodes

DEFAULT_SECONDS = 10.0
DEFAULT_FRAMES = 10_000


def _rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


ROUNDS = 5  # raw, naive and pipeline take turns, so load from elsewhere hits all three alike


def _raw(det, tensor: np.ndarray, seconds: float) -> tuple[int, float]:
    """Invokes alone on one preprocessed frame: (count, elapsed s)."""
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        det.model.set_input(tensor)
        det.model.invoke()
        n += 1
    return n, time.perf_counter() - t0


def _naive(det, cap: cv2.VideoCapture, video: str, seconds: float) -> tuple[list[float], cv2.VideoCapture]:
    """Read, resize, invoke, decode, repeat: ([frames, elapsed s, read s, invoke s], the capture)."""
    n, read_s, invoke_s, t0 = 0, 0.0, 0.0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        r0 = time.perf_counter()
        ok, frame = cap.read()
        if not ok:
            cap.release()
            cap = cv2.VideoCapture(video)
            continue
        read_s += time.perf_counter() - r0
        det.detect(frame)
        invoke_s += det.timings.invoke_ms / 1e3
        n += 1
    return [n, time.perf_counter() - t0, read_s, invoke_s], cap


class _Run:
    """One real pipeline (and event log) on the video, paced or not, started and stopped."""

    def __init__(self, det, video: str, model: str, threads: int, paced: bool, workdir: Path):
        from ..events import EventLog, Retention
        from ..pipeline import Pipeline
        from .. import config

        # the model's pipeline is measured here, not motion gating (runtime/bench/motion.py)
        data = {"camera": {"source": video, "loop": True, "as_fast_as_possible": not paced},
                "model": {"path": model, "threads": threads}, "motion": {"enabled": False}}
        cfg = config.parse(data, "(bench)", Path.cwd())
        workdir.mkdir(parents=True, exist_ok=True)
        self.log = EventLog(workdir / "events.db", workdir / "snapshots", Retention(), 2.0, journal_lines=False)
        self.pipe = Pipeline(cfg, det, self.log)
        self.pipe.start()

    def wait_inferred(self, n: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while self.pipe.stats.inferred < n and time.monotonic() < deadline:
            time.sleep(0.01)

    def count(self, seconds: float) -> tuple[int, float, float]:
        """(inferences, elapsed s, seconds spent in invoke) over `seconds`."""
        st = self.pipe.stats
        n0, busy0, t0 = st.inferred, st.invoke_total_s, time.monotonic()
        time.sleep(seconds)
        return st.inferred - n0, time.monotonic() - t0, st.invoke_total_s - busy0

    def stop(self) -> None:
        self.pipe.stop()
        self.log.close()


def _compare(det, frame: np.ndarray, video: str, model: str, threads: int, seconds: float, workdir: Path) -> dict:
    tensor, _ = det.preprocessor(frame)
    det.model.set_input(tensor)
    det.model.invoke()  # warm
    totals = {"raw": [0, 0.0], "naive": [0, 0.0, 0.0, 0.0], "pipeline": [0, 0.0]}
    busy = 0.0
    cap = cv2.VideoCapture(video)
    slice_s = seconds / ROUNDS
    for r in range(ROUNDS):
        n, t = _raw(det, tensor, slice_s)
        totals["raw"][0] += n
        totals["raw"][1] += t
        figures, cap = _naive(det, cap, video, slice_s)
        totals["naive"] = [a + b for a, b in zip(totals["naive"], figures)]
        run = _Run(det, video, model, threads, paced=False, workdir=workdir / f"round{r}")
        run.wait_inferred(3)
        n, t, b = run.count(slice_s)
        run.stop()
        busy += b
        totals["pipeline"][0] += n
        totals["pipeline"][1] += t
    cap.release()
    raw, naive, pipe = (totals[k][0] / totals[k][1] for k in ("raw", "naive", "pipeline"))
    n, elapsed, read_s, invoke_s = totals["naive"]
    # The most any pipeline can gain over the naive loop: everything but the slowest stage
    # (decoding the video, or invoking) overlapped away.
    ideal = elapsed / max(read_s, invoke_s)
    return {"threads": threads, "variant": det.variant.name, "raw_invoke_fps": round(raw, 2),
            "invoke_ms": round(1000 / raw, 2), "naive_fps": round(naive, 2), "pipeline_fps": round(pipe, 2),
            "pipeline_vs_raw": round(pipe / raw, 3), "pipeline_vs_naive": round(pipe / naive, 3),
            # The share of the pipeline's time the model spent invoking: what >= 0.9 x raw means,
            # measured inside the pipeline, so it does not depend on load changing between phases.
            "model_busy_share": round(busy / totals["pipeline"][1], 3),
            "naive_read_ms": round(read_s / n * 1e3, 2), "naive_invoke_ms": round(invoke_s / n * 1e3, 2),
            "ideal_pipeline_vs_naive": round(ideal, 3)}


def _memory(video: str, model: str, threads: int, frames: int, workdir: Path) -> dict:
    """The real daemon (`edgewatch run`, a child process), the video as fast as the pipeline takes
    it: RSS after warm-up and after `frames` more frames, sampled along the way."""
    import os
    import subprocess
    import sys

    workdir.mkdir(parents=True, exist_ok=True)
    cfg = workdir / "config.toml"
    cfg.write_text(f'[camera]\nsource = {json.dumps(video)}\nloop = true\nas_fast_as_possible = true\n'
                   f'[model]\npath = {json.dumps(model)}\nthreads = {threads}\n[motion]\nenabled = false\n'
                   f'[events]\njournal = false\n')
    status = workdir / "state" / "status.json"
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    proc = subprocess.Popen([sys.executable, "-m", "runtime.cli", "run", "--config", str(cfg), "--state-dir",
                             str(workdir / "state")], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=Path(__file__).resolve().parents[1])
    ps = psutil.Process(proc.pid)

    def frames_done() -> int:
        try:
            return json.loads(status.read_text())["frames"]["captured"]
        except (OSError, ValueError, KeyError):
            if proc.poll() is not None:
                raise RuntimeError(f"the daemon exited with code {proc.returncode}") from None
            return 0

    def wait_frames(n: int) -> None:
        while frames_done() < n:
            if proc.poll() is not None:
                raise RuntimeError(f"the daemon exited with code {proc.returncode}")
            time.sleep(0.5)

    try:
        warmup = 1000  # past the first events, SQLite page cache and snapshot buffers filling up
        wait_frames(warmup)
        rss0 = ps.memory_info().rss / 2**20
        samples = []
        t0 = time.monotonic()
        for i in range(1, 11):
            wait_frames(warmup + frames * i // 10)
            samples.append(round(ps.memory_info().rss / 2**20, 1))
        elapsed = time.monotonic() - t0
    finally:
        proc.terminate()
        proc.wait(10)
    # RSS swings by a few frames' worth as events open and close, so the trend (a least-squares
    # line through the samples, over all the frames) says more than the last sample alone.
    slope = np.polyfit(np.arange(1, 11) * frames / 10, np.array(samples), 1)[0]
    return {"rss_after_warmup_mb": round(rss0, 1), "rss_end_mb": samples[-1], "growth_mb": round(samples[-1] - rss0, 2),
            "trend_mb": round(float(slope * frames), 2),
            "rss_samples_mb": samples, "warmup_frames": warmup, "frames": frames, "seconds": round(elapsed, 1)}


def _chosen(rows: list[dict]) -> dict:
    """The thread count the daemon runs at (the most pipeline frames per second), and how it
    compares with raw invoke at that setting and with the naive loop at the naive loop's best."""
    best = max(rows, key=lambda r: r["pipeline_fps"])
    naive = max(rows, key=lambda r: r["naive_fps"])
    return {"threads": best["threads"], "pipeline_fps": best["pipeline_fps"], "pipeline_vs_raw": best["pipeline_vs_raw"],
            "best_naive_threads": naive["threads"], "best_naive_fps": naive["naive_fps"],
            "pipeline_vs_best_naive": round(best["pipeline_fps"] / naive["naive_fps"], 3)}


def _save(args: argparse.Namespace, model: str, rows: list[dict]) -> Path:
    """The pipeline's rate per thread count, into this board's figures for the bundle (board_costs.py)."""
    from ..bundle import find_manifest
    from ..bundle_digest import bundle_digest
    from ..errors import CommandError
    from ..monitor import board_costs
    from .. import paths

    manifest = find_manifest(Path(model))
    if manifest is None or not manifest.is_file():
        raise CommandError(f"{model}: --save keeps figures per bundle: give a bundle folder or its model.json")
    state = paths.state_dir(args.state_dir)
    board = board_costs.board_identity()
    digest = bundle_digest(manifest.parent)
    costs = board_costs.load(state, digest, board) or board_costs.BoardCosts(digest, board)
    costs.pipeline = pipeline_figures(rows, "edgewatch bench --pipeline")
    return board_costs.save(state, costs)


def pipeline_figures(rows: list[dict], how: str) -> dict[str, dict]:
    """Rows of `_compare` as this board's pipeline figures per thread count (BoardCosts.pipeline)."""
    return {str(r["threads"]): {"fps": r["pipeline_fps"], "raw_fps": r["raw_invoke_fps"], "naive_fps": r["naive_fps"],
                                "cpu_ms_per_frame": None, "variant": r["variant"], "how": how}
            for r in rows}


def run_pipeline_bench(args: argparse.Namespace) -> int:
    from ..errors import CommandError
    from ..detector import Detector, DetectorOptions
    from ..interpreter import default_threads
    from .. import paths

    model = str(Path(args.model).resolve()) if args.model else str(paths.BUNDLED_MODEL)
    video = str(Path(args.input).resolve()) if args.input else str(paths.BUNDLED_VIDEO)
    seconds = DEFAULT_SECONDS if args.seconds is None else args.seconds
    frames = DEFAULT_FRAMES if args.frames is None else args.frames
    threads = args.threads or list(range(1, default_threads() + 1))
    cap = cv2.VideoCapture(video)
    ok, frame = cap.read()
    source_fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
    cap.release()
    if not ok:
        raise CommandError(f"{video}: cannot read a frame")

    results: dict = {"measure": "pipeline", "model": model, "input": video, "source_fps": source_fps,
                     "seconds_per_phase": seconds, "per_threads": []}
    say = (lambda *a: None) if args.json else print
    say(f"model {model}\ninput {video} ({frame.shape[1]}x{frame.shape[0]}, {source_fps:g} fps)")
    with tempfile.TemporaryDirectory(prefix="edgewatch-bench-") as tmp:
        det = None
        for n in threads:
            det = Detector.create_from_options(DetectorOptions(model=model, variant=args.variant, threads=n))
            row = _compare(det, frame, video, model, n, seconds, Path(tmp) / f"threads{n}")
            results["per_threads"].append(row)
            say(f"threads {n} ({row['variant']}): raw invoke {row['raw_invoke_fps']:.1f}/s ({row['invoke_ms']:.1f} ms), "
                f"naive loop {row['naive_fps']:.1f} fps, pipeline {row['pipeline_fps']:.1f} fps -> "
                f"{row['pipeline_vs_raw']:.2f} x raw (target >= 0.9), {row['pipeline_vs_naive']:.2f} x naive (target >= 1.3); "
                f"model busy {row['model_busy_share']:.0%} of the pipeline's time; naive loop per frame: read "
                f"{row['naive_read_ms']:.1f} ms, invoke {row['naive_invoke_ms']:.1f} ms, so no pipeline can beat it by "
                f"more than {row['ideal_pipeline_vs_naive']:.2f} x here")
        chosen = _chosen(results["per_threads"])
        results["chosen"] = chosen
        say(f"the daemon's setting: {chosen['threads']} thread(s), the best pipeline rate here: pipeline "
            f"{chosen['pipeline_vs_raw']:.2f} x raw invoke at that setting (target >= 0.9), "
            f"{chosen['pipeline_vs_best_naive']:.2f} x the naive loop at its best ({chosen['best_naive_threads']} thread(s), "
            f"{chosen['best_naive_fps']:.1f} fps) (target >= 1.0)")
        if args.save:
            results["saved"] = str(_save(args, model, results["per_threads"]))
            say(f"saved {results['saved']}: the daemon starts at {chosen['threads']} thread(s) unless its config pins model.threads")
        if threads[0] != chosen["threads"] or len(threads) > 1:
            det = Detector.create_from_options(DetectorOptions(model=model, variant=args.variant, threads=chosen["threads"]))

        run = _Run(det, video, model, chosen["threads"], paced=True, workdir=Path(tmp) / "paced")
        run.wait_inferred(5)
        n, elapsed, busy = run.count(seconds)
        p50, p95 = run.pipe.stats.ages_ms()
        ages = {"p50": p50, "p95": p95}
        run.stop()
        del det, run
        gc.collect()
        interval_ms = 1000.0 / source_fps if source_fps else 0.0
        invoke_here = busy / max(n, 1) * 1e3  # the machine's load changes: the invoke time of this very run
        target = invoke_here + interval_ms
        results["paced"] = {"fps": round(n / elapsed, 2), "frame_age_ms": ages, "invoke_ms": round(invoke_here, 1),
                            "target_p95_ms": round(target, 1)}
        say(f"paced at {source_fps:g} fps: {n / elapsed:.1f} fps inferred, frame age at detection p50 {ages['p50']:.1f} ms, "
            f"p95 {ages['p95']:.1f} ms (target <= {target:.1f} ms: one invoke ({invoke_here:.1f} ms in this run) "
            f"+ one frame interval)")

        mem = _memory(video, model, chosen["threads"], frames, Path(tmp) / "memory")
        results["memory"] = mem
        say(f"memory (the daemon, a child process): RSS after {mem['warmup_frames']} frames {mem['rss_after_warmup_mb']:.1f} MB "
            f"(target <= 150); growth over {frames} more frames ({mem['seconds']:.0f} s) {mem['growth_mb']:+.2f} MB "
            f"(target < 3), trend {mem['trend_mb']:+.2f} MB; samples {mem['rss_samples_mb']}")
    if args.json:
        print(json.dumps(results))
    return exitcodes.OK
