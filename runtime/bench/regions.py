"""`edgewatch bench --regions`: do crops around motion raise the recall of small people?

The footage is vtest.avi seen "from twice as far": each frame shrunk to half size and placed in
one quarter of a frame of the camera's size, the other three quarters the (half-size) empty
scene with sensor noise. People are then half as tall in the frame, as distant people are.

Ground truth is what the model finds in the full-size frame (where people are at the size it
sees well), shrunk with it. On the far footage, frame by frame with the motion detector fed every
frame, the model runs
  whole    on the whole frame (what the daemon does without regions), and
  regions  on crops at the model's resolution around the motion boxes and the last frame's
           detections (runtime/motion/regions.py), or the whole frame when the plan says so,
and each is scored against the ground truth (box IoU >= 0.5): recall, false detections per
frame, and invokes per frame (the cost).

The same is measured on the footage as it is ("near"), where the whole frame is the truth: what
regions would lose, and cost, where people are already large enough.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from .. import exitcodes
from ..detections import Detections, box_iou
from ..motion import MotionDetector
from ..motion.regions import detect_in, plan_regions
from ..config import MotionConfig
from .footage import EmptyScene, median_background, read_frames

MATCH_IOU = 0.5
WARMUP_S = 3.0  # the empty scene first, so the motion model knows the background before people come


def far_frame(frame: np.ndarray, empty: np.ndarray, quarter: int = 3) -> np.ndarray:
    """`frame` at half size in one quarter (0 top-left .. 3 bottom-right) of `empty` (full size)."""
    h, w = frame.shape[:2]
    out = empty.copy()
    small = cv2.resize(frame, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    y, x = (quarter // 2) * (h // 2), (quarter % 2) * (w // 2)
    out[y:y + h // 2, x:x + w // 2] = small
    return out


def _match(found: Detections, truth: np.ndarray) -> tuple[int, int]:
    """(ground-truth boxes found, detections matching none), greedy by IoU."""
    if not len(truth) or not len(found):
        return 0, len(found)
    iou = box_iou(truth, found.xyxy)
    hit = 0
    used_t, used_f = set(), set()
    for flat in np.argsort(-iou, axis=None, kind="stable"):
        ti, fi = divmod(int(flat), iou.shape[1])
        if iou[ti, fi] < MATCH_IOU:
            break
        if ti in used_t or fi in used_f:
            continue
        used_t.add(ti)
        used_f.add(fi)
        hit += 1
    return hit, len(found) - len(used_f)


def measure(model: str, video: str, frames: int | None, every: int, fps: float = 10.0, seed: int = 0,
            min_score: float = 0.5, far: bool = True) -> dict:
    from ..detector import Detector, DetectorOptions

    det = Detector.create_from_options(DetectorOptions(model=model))
    model_size = det.model.input_size
    clip = read_frames(video, limit=frames)
    h, w = clip[0].shape[:2]
    background = median_background(video)
    if far:  # the three static quarters: the empty scene at half size, tiled; noise added per frame
        background = np.tile(cv2.resize(background, (w // 2, h // 2), interpolation=cv2.INTER_AREA), (2, 2, 1))
    scene = EmptyScene(background, light=lambda t: 1.0, seed=seed)
    motion = MotionDetector(MotionConfig())
    t = 0.0
    for _ in range(int(WARMUP_S * fps)):
        motion.detect(scene.frame(t), t)
        t += 1 / fps
    totals = {"truth": 0, "frames": 0, "whole": [0, 0, 0], "regions": [0, 0, 0]}  # found, false, invokes
    regions_cut = 0  # frames where the plan fell back to the whole frame
    previous = Detections.empty()
    y0, x0 = h // 2, w // 2  # the live quarter (bottom right)
    for i, frame in enumerate(clip):
        seen = far_frame(frame, scene.frame(t)) if far else frame
        moved = motion.detect(seen, t)
        t += 1 / fps
        if i % every:
            continue
        whole = det.detect(seen)
        whole = whole[whole.score >= min_score]
        if far:
            truth = det.detect(frame)
            truth = truth[truth.score >= min_score].xyxy * 0.5 + np.array([x0, y0, x0, y0], np.float32)
        else:
            truth = whole.xyxy
        boxes = np.concatenate([moved.boxes, previous.xyxy]) if len(previous) else moved.boxes
        crops = plan_regions(boxes, (w, h), model_size)
        if crops is None:
            found, invokes = whole, 1
            regions_cut += 1
        else:
            found, invokes = detect_in(det, seen, crops)[0], len(crops)
            found = found[found.score >= min_score]
        previous = found
        totals["truth"] += len(truth)
        totals["frames"] += 1
        for name, d, n in (("whole", whole, 1), ("regions", found, invokes)):
            hit, false = _match(d, truth)
            totals[name][0] += hit
            totals[name][1] += false
            totals[name][2] += n
    n, truth = totals["frames"], max(totals["truth"], 1)
    out = {"frames": n, "people": totals["truth"], "model_input": list(model_size), "frame": [w, h],
           "whole_frame_fallbacks": regions_cut}
    for name in ("whole", "regions"):
        hit, false, invokes = totals[name]
        out[name] = {"recall": round(hit / truth, 3), "false_per_frame": round(false / max(n, 1), 3),
                     "invokes_per_frame": round(invokes / max(n, 1), 2)}
    return out


def run_regions_bench(args: argparse.Namespace) -> int:
    from .. import paths

    model = str(Path(args.model).resolve()) if args.model else str(paths.BUNDLED_MODEL)
    video = str(Path(args.input).resolve()) if args.input else str(paths.BUNDLED_VIDEO)
    t0 = time.monotonic()
    result = {"far": measure(model, video, args.frames, every=2, far=True),
              "near": measure(model, video, args.frames, every=2, far=False)}
    result["seconds"] = round(time.monotonic() - t0, 1)
    if args.json:
        print(json.dumps(result))
        return exitcodes.OK
    titles = {"far": "small people: {video} at half size in a {w}x{h} frame, {n} frames, {people} people found by the model at full size",
              "near": "the same footage as it is: {video}, {w}x{h}, {n} frames, {people} people found on the whole frame"}
    for key, title in titles.items():
        r = result[key]
        print(title.format(video=Path(video).name, w=r["frame"][0], h=r["frame"][1], n=r["frames"], people=r["people"]) + " (the truth)")
        for name, what in (("whole", "whole frame"), ("regions", "motion regions")):
            m = r[name]
            print(f"  {what:<15} recall {m['recall']:.3f}, false detections {m['false_per_frame']:.2f} per frame, "
                  f"{m['invokes_per_frame']:.2f} invokes per frame")
        print(f"  (regions fell back to the whole frame on {r['whole_frame_fallbacks']} of {r['frames']} frames)")
    return exitcodes.OK
