"""`edgewatch bench --tracking`: the tracker measured, beside the trackers people know, in one run.

1. Ground truth: TUD-Stadtmitte (179 frames, 10 people; it ships inside `motmetrics`), every 2nd
   frame (a detector slower than the camera), through a seeded simulated detector (5 % box jitter,
   10 % single misses, occlusions of 2-5 frames starting at 4 % per person per frame, 15 % of
   boxes at a low score 0.15-0.5, 0.3 false positives per frame). IDF1, ID switches,
   fragmentations, MOTA (motmetrics) and tracks per person, the mean over the seeds.
2. Real footage: the bundled int8 person model over the whole vtest.avi (detections cached, so
   every tracker sees the very same ones): events, the share shorter than 1 s, and restarts (an
   event starting within 2 s and 0.75 box heights of one that just ended).
3. Cost: CPU time per frame of the tracker's own update at 20 detections per frame.

Peers run when installed (a bench environment, never the board's): ByteTrack from `trackers`,
norfair with IoU distance and its Kalman filter. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ... import exitcodes, paths
from ...detections import Detections, box_iou
from ...errors import CommandError
from ...tracking import TrackerParams
from . import footage, peers
from .ground_truth import TUD_FPS, TUD_SIZE, GroundTruthMissing, SimulatedDetector, load_tud

TRACKERS = ("edgewatch", "bytetrack", "norfair")
DETECTOR_STEP = 2
IOU_MATCH = 0.5  # a track's box counts as the person's at this overlap (the MOT convention)


def ground_truth_scores(truth, sightings) -> dict:
    """motmetrics' IDF1, ID switches, fragmentations, MOTA; and distinct tracks per real person."""
    import motmetrics as mm

    by_time = {f.time: f for f in truth}
    acc = mm.MOTAccumulator(auto_id=True)
    for t, seen in sightings:
        frame = by_time[t]
        hyp_ids = [str(tid) for tid, _, _ in seen]
        hyp = np.array([b for _, b, _ in seen], np.float32).reshape(-1, 4)
        # The distance is computed here, with the runtime's one IoU (motmetrics' own helper calls
        # np.asfarray, which numpy 2 no longer has).
        dist = 1.0 - box_iou(frame.xyxy, hyp).astype(np.float64)
        dist[dist > 1 - IOU_MATCH] = np.nan
        acc.update(frame.ids.tolist(), hyp_ids, dist)
    mh = mm.metrics.create()
    s = mh.compute(acc, metrics=["idf1", "num_switches", "num_fragmentations", "mota"], name="run")
    events = acc.mot_events
    matched = events[events.Type.isin(["MATCH", "SWITCH"])]
    people = sorted({int(i) for f in truth for i in f.ids})
    per_person = matched.groupby("OId").HId.nunique().reindex(people, fill_value=0)
    return {"idf1": float(s.idf1.iloc[0]), "id_switches": int(s.num_switches.iloc[0]),
            "fragmentations": int(s.num_fragmentations.iloc[0]), "mota": float(s.mota.iloc[0]),
            "tracks_per_person": float(per_person.mean())}


def crowd(count: int = 20, frames: int = 400, fps: float = 10.0, seed: int = 0,
          size: tuple[int, int] = (1280, 720)) -> list[tuple[float, Detections]]:
    """`count` people walking straight, turning back at the edges: `count` detections per frame."""
    rng = np.random.default_rng(seed)
    h = rng.uniform(80, 200, count)
    w = 0.4 * h
    pos = np.stack([rng.uniform(0, size[0] - w), rng.uniform(0, size[1] - h)], axis=1)
    vel = rng.uniform(-80, 80, (count, 2))
    out = []
    for i in range(frames):
        pos += vel / fps
        over = (pos < 0) | (pos + np.stack([w, h], axis=1) > size)
        vel[over] *= -1
        jitter = rng.normal(0, 0.03, (count, 4)) * np.stack([w, h, w, h], axis=1)
        xyxy = np.concatenate([pos, pos + np.stack([w, h], axis=1)], axis=1) + jitter
        scores = np.where(rng.random(count) < 0.15, rng.uniform(0.2, 0.5, count), rng.uniform(0.5, 0.95, count))
        out.append((i / fps, Detections(xyxy, scores, np.zeros(count, np.int32))))
    return out


def cost_ms(names: list[str], params: TrackerParams, frames: list[tuple[float, Detections]],
            rounds: int = 3, warmup: int = 20) -> dict[str, float]:
    """CPU ms per frame of each tracker's update, the median of `rounds` rounds taken in turn."""
    per: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(rounds):
        for name in names:
            tracker = peers.PEERS[name](params, 10.0)
            inputs = [(t, tracker.prepare(d)) for t, d in frames]
            for t, d in inputs[:warmup]:
                tracker.update(t, d)
            c0 = time.thread_time()
            for t, d in inputs[warmup:]:
                tracker.update(t, d)
            per[name].append((time.thread_time() - c0) * 1e3 / (len(inputs) - warmup))
    return {n: statistics.median(v) for n, v in per.items()}


def run_tracking_bench(args: argparse.Namespace) -> int:
    names = [n.strip() for n in args.trackers.split(",") if n.strip()]
    unknown = sorted(set(names) - set(TRACKERS))
    if unknown:
        raise CommandError(f"--trackers: unknown {', '.join(unknown)} (known: {', '.join(TRACKERS)})")
    names, missing = peers.available(names)
    params = TrackerParams()
    model = Path(args.model) if args.model else paths.BUNDLED_MODEL
    video = Path(args.input) if args.input else paths.BUNDLED_VIDEO
    report: dict = {"params": asdict(params), "missing": missing}
    emit = (lambda obj: print(json.dumps(obj), flush=True)) if args.json else None

    # 1. Ground truth.
    try:
        truth = load_tud()
    except GroundTruthMissing as exc:
        raise CommandError(f"--tracking: {exc}") from None
    sim = SimulatedDetector()
    seeds = list(range(args.seeds))
    detections = {s: sim.run(truth, s, DETECTOR_STEP) for s in seeds}
    gt: dict[str, dict] = {}
    for name in names:
        runs = [ground_truth_scores(truth, peers.run(name, params, TUD_FPS / DETECTOR_STEP, detections[s], TUD_SIZE))
                for s in seeds]
        gt[name] = {k: statistics.fmean(r[k] for r in runs) for k in runs[0]}
        gt[name]["per_seed"] = runs
    report["ground_truth"] = gt
    if emit:
        emit({"block": "ground_truth", "sequence": "TUD-Stadtmitte", "seeds": seeds, "every": DETECTOR_STEP, "results": gt})
    else:
        print(f"Ground truth: TUD-Stadtmitte ({len(truth)} frames, {len({int(i) for f in truth for i in f.ids})} people), "
              f"every {DETECTOR_STEP}nd frame, simulated detector, mean of {len(seeds)} seeds")
        print(f"  {'tracker':<10} {'IDF1':>6} {'ID sw':>6} {'frag':>6} {'MOTA':>6} {'tracks/person':>14}")
        for name, r in gt.items():
            print(f"  {name:<10} {r['idf1']:>6.3f} {r['id_switches']:>6.1f} {r['fragmentations']:>6.1f} {r['mota']:>6.3f} {r['tracks_per_person']:>14.2f}")

    # 2. Real footage.
    fps, size, frames = footage.video_detections(model, video, max_frames=args.frames)
    real: dict[str, dict] = {}
    for name in names:
        real[name] = footage.summary(footage.traces(peers.run(name, params, fps, frames, size)))
    if emit:
        emit({"block": "footage", "video": str(video), "model": str(model), "frames": len(frames), "fps": fps, "results": real})
    else:
        print(f"\nReal footage: {video.name} ({len(frames)} frames at {fps:g} fps), {model.name} (default variant), "
              f"detections cached")
        print(f"  {'tracker':<10} {'events':>6} {'< 1 s':>7} {'restarts':>14}")
        for name, r in real.items():
            print(f"  {name:<10} {r['events']:>6} {r['short_share']:>7.1%} {r['restarts']:>5} ({r['restart_share']:>5.1%})")

    # 3. Cost.
    costs = cost_ms(names, params, crowd())
    if emit:
        emit({"block": "cost", "detections_per_frame": 20, "cpu_ms_per_frame": costs})
    else:
        print("\nCost: CPU ms per frame of the tracker's update, 20 detections per frame (median of 3 rounds)")
        base = costs.get("edgewatch")
        for name, ms in costs.items():
            ratio = f"  (x{ms / base:.1f} edgewatch)" if base and name != "edgewatch" else ""
            print(f"  {name:<10} {ms:>7.3f}{ratio}")
        for name, why in missing.items():
            print(f"\n{name}: {why}")
    return exitcodes.OK
