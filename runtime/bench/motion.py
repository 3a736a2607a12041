"""`edgewatch bench --motion`: what motion gating saves, and what it costs in events, in one run.

The footage is made from real video (runtime/bench/footage.py): the empty street of vtest.avi
(its per-pixel median) with sensor noise and a slow +-15 % light swing for `--empty-seconds`,
then vtest.avi itself, then the empty street again; written as a Motion-JPEG file and played at
its own 10 fps like a camera. A second clip is the same with the light stepping up by 40 % 20 s
into the last empty part.

The real pipeline (capture -> gate -> model -> tracker -> SQLite events) runs the plain clip with
motion gating off and on, and the light-step clip with it on, one after the other. For each part
of the clip it measures the process's CPU time per minute, the inference rate and the share of
frames sent to the model. Events are read back from each run's log: an event of the ungated run
is recalled when a gated event overlaps it in time and their paths agree (median box IoU >= 0.3
where both exist), and the delay of its start is counted in frames. On the light-step clip:
events after the step (there should be none), and how long the gate stayed open for motion.

Targets: empty parts <= 0.2 x the ungated CPU; busy part >= 0.95 x the ungated inference rate;
event recall >= 0.98; start delay p95 <= 2 frames for objects that come with motion; the light
step makes no event and the gate closes within 10 s. Printed, never asserted.

Two live runs also differ by which frames each one dropped (a loaded machine drops others), and
their trackers then split people differently: their event comparison mixes the gate's effect with
that. So each clip is also replayed frame by frame at its own capture times (`Pipeline.process`),
ungated and gated: there the gate is the only difference, and recall and start delay are its own.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from .. import exitcodes
from ..detections import box_iou
from .footage import Part, bench_clip, write_clip

FPS = 10.0
MATCH_IOU = 0.3
STEP_AT_S = 20.0
STEP = 1.4
GATE_CLOSE_TARGET_S = 10.0
REPLAY_T0 = 1_700_000_000.0  # wall clock of a replay's first frame
SAMPLE_S = 0.2  # the sampler reads counters only (no psutil), so its own CPU stays out of the figures


@dataclass
class Sample:
    wall: float
    frames: int  # captured so far
    inferred: int
    cpu_s: float  # this process
    reasons: dict[str, int] = field(default_factory=dict)


@dataclass
class RunResult:
    name: str
    parts: list[dict]
    events: list[dict]
    samples: list[Sample]
    motion: dict | None

    @cached_property
    def _clock(self) -> tuple[np.ndarray, np.ndarray]:
        return np.array([s.wall for s in self.samples]), np.array([s.frames for s in self.samples], np.float64)

    def clip_s(self, wall: float) -> float:
        """Where the clip was at wall time `wall`, in seconds from its first frame, read off the
        samples of the capture's frame counter: a machine too loaded to play the clip in real time
        stretches wall time, not the clip, so events of two runs stay comparable."""
        walls, frames = self._clock
        if wall < walls[0]:
            return (frames[0] - (walls[0] - wall) * FPS) / FPS
        return float(np.interp(wall, walls, frames)) / FPS

    def wall_at(self, frame: int) -> float:
        """Wall time at which the capture reached `frame` (between samples, interpolated)."""
        walls, frames = self._clock
        return float(np.interp(frame, frames, walls))


def _cpu_s() -> float:
    return time.process_time()


class _Run:
    """One pipeline on one clip, sampled every SAMPLE_S until the clip has been played."""

    def __init__(self, name: str, clip: Path, parts: list[Part], model: str, threads: int | None, motion: bool,
                 regions: bool, workdir: Path):
        from .. import config
        from ..events import EventLog, Retention
        from ..pipeline import Pipeline
        from ..pipeline.loader import load_and_test

        self.name, self.parts, self.workdir = name, parts, workdir
        # A stall reading the clip is the machine's, not a camera's: reopening it would replay it from the start.
        data = {"camera": {"source": str(clip), "read_timeout_s": 600.0}, "model": {"path": model, **({"threads": threads} if threads else {})},
                "motion": {"enabled": motion, "regions": regions}, "events": {"journal": False}}
        self.config = config.parse(data, f"(bench {name})", Path.cwd())
        workdir.mkdir(parents=True, exist_ok=True)
        self.db = workdir / "events.db"
        self.log = EventLog(self.db, workdir / "snapshots", Retention(), 2.0, journal_lines=False)
        self.pipe = Pipeline(self.config, load_and_test(self.config.model), self.log)

    def play(self) -> RunResult:
        samples: list[Sample] = []
        pipe = self.pipe
        pipe.start()
        try:
            while True:
                samples.append(Sample(time.time(), pipe.slot.put_count, pipe.stats.inferred, _cpu_s(),
                                      dict(pipe.gate.stats.by_reason)))
                if pipe.capture.ended and pipe.slot.peek() is None:
                    break
                if not pipe.alive:
                    raise RuntimeError(f"{self.name}: the pipeline stopped: {pipe.stats.last_error}")
                time.sleep(SAMPLE_S)
            time.sleep(0.5)  # the last frame's inference
        finally:
            pipe.stop()
            self.log.close()
        motion = pipe.health().motion
        return RunResult(self.name, self._parts(samples), read_events(self.db), samples,
                         motion.as_dict() if motion is not None else None)

    def replay(self, clip: Path) -> RunResult:
        """Every frame of `clip` through the pipeline on this thread, at its own capture time (frame
        k at REPLAY_T0 + k / FPS): no frame dropped, nothing timed by the machine, so two replays
        differ only by their configuration. Parts carry no costs (none are measured here)."""
        from ..sources import Frame
        from .footage import iter_frames

        pipe, n = self.pipe, 0
        try:
            for n, image in enumerate(iter_frames(clip), start=1):
                pipe.process(Frame(image, n - 1, (n - 1) / FPS, REPLAY_T0 + (n - 1) / FPS))
            pipe.close_events()
            if not self.log.flush(timeout=120.0):
                raise RuntimeError(f"{self.name}: the event log did not flush")
        finally:
            self.log.close()
        clock = [Sample(REPLAY_T0, 0, 0, 0.0), Sample(REPLAY_T0 + n / FPS, n, pipe.stats.inferred, 0.0,
                                                      dict(pipe.gate.stats.by_reason))]
        motion = pipe.health().motion
        return RunResult(self.name, [], read_events(self.db), clock, motion.as_dict() if motion is not None else None)

    def _parts(self, samples: list[Sample]) -> list[dict]:
        out = []
        for p in self.parts:
            a = _at_frame(samples, p.first)
            b = _at_frame(samples, p.first + p.count)
            wall = max(b.wall - a.wall, 1e-9)
            frames = max(b.frames - a.frames, 1)
            out.append({"part": p.name, "first": p.first, "frames": p.count, "seconds": round(wall, 1),
                        "cpu_s_per_min": round((b.cpu_s - a.cpu_s) / wall * 60, 2),
                        "inference_fps": round((b.inferred - a.inferred) / wall, 2),
                        "sent_share": round((b.inferred - a.inferred) / frames, 3)})
        return out


def _at_frame(samples: list[Sample], frame: int) -> Sample:
    """The first sample at or past `frame` captured frames (the last one if none is)."""
    for s in samples:
        if s.frames >= frame:
            return s
    return samples[-1]


def read_events(db: Path) -> list[dict]:
    """Every event in the log at `db`, oldest first: id, label, score, start, end (unix s), box,
    trajectory (seconds since start, then the box)."""
    con = sqlite3.connect(db)
    try:
        rows = con.execute('SELECT id, label, score, start, "end", box, trajectory FROM events ORDER BY start').fetchall()
    finally:
        con.close()
    return [{"id": r[0], "label": r[1], "score": r[2], "start": r[3], "end": r[4],
             "box": json.loads(r[5]) if isinstance(r[5], str) else r[5], "trajectory": json.loads(r[6] or "[]")} for r in rows]


def _path(run: RunResult, ev: dict) -> tuple[np.ndarray, np.ndarray]:
    """An event's path in clip time: (seconds, xyxy boxes); its stored box alone when it has none."""
    points = ev.get("trajectory") or []
    if not points:
        return np.array([run.clip_s(ev["start"])]), np.array([ev["box"]], np.float32)
    p = np.array(points, np.float64)
    return np.array([run.clip_s(ev["start"] + s) for s in p[:, 0]]), p[:, 1:5].astype(np.float32)


def _box_at(path: tuple[np.ndarray, np.ndarray], t: float) -> np.ndarray:
    times, boxes = path
    return np.array([np.interp(t, times, boxes[:, k]) for k in range(4)], np.float32)


def path_iou(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """How well two events' paths agree where both exist: the median box IoU at the samples of
    either that fall in the time they share (at its middle when none does). A long walk is one
    object however its two runs picked their stored box."""
    lo, hi = max(a[0][0], b[0][0]) - 1 / FPS, min(a[0][-1], b[0][-1]) + 1 / FPS
    times = [t for t in np.concatenate([a[0], b[0]]) if lo <= t <= hi] or [(lo + hi) / 2]
    ious = [float(box_iou(_box_at(a, t)[None], _box_at(b, t)[None])[0, 0]) for t in times]
    return float(np.median(ious))


def match_events(reference: RunResult, gated: RunResult) -> tuple[list[tuple[dict, dict]], list[dict]]:
    """Each reference event paired with the gated event of its label that overlaps it in clip time
    (to a frame) with the best path IoU >= MATCH_IOU (`path_iou`), each gated event used once:
    (pairs, unmatched)."""
    used: set[int] = set()
    pairs, missed = [], []
    paths = [_path(gated, g) for g in gated.events]
    spans = [(gated.clip_s(g["start"]), gated.clip_s(g["end"] or g["start"])) for g in gated.events]
    for ev in reference.events:
        path = _path(reference, ev)
        s0 = reference.clip_s(ev["start"])
        e0 = reference.clip_s(ev["end"] or ev["start"])
        best, best_iou = None, MATCH_IOU
        for j, g in enumerate(gated.events):
            if j in used or g["label"] != ev["label"]:
                continue
            s1, e1 = spans[j]
            if s1 > e0 + 1 / FPS or s0 > e1 + 1 / FPS:
                continue
            iou = path_iou(path, paths[j])
            if iou >= best_iou:
                best, best_iou = j, iou
        if best is None:
            missed.append(ev)
        else:
            used.add(best)
            pairs.append((ev, gated.events[best]))
    return pairs, missed


def compare_events(reference: RunResult, gated: RunResult) -> dict:
    """Recall of the reference's events in the gated run, and the delay of each recalled event's
    start, in frames."""
    pairs, missed = match_events(reference, gated)
    delays = [(gated.clip_s(g["start"]) - reference.clip_s(ev["start"])) * FPS for ev, g in pairs]
    n = len(reference.events)
    d = np.array(delays) if delays else np.zeros(1)
    return {"reference_events": n, "gated_events": len(gated.events), "recalled": len(delays),
            "recall": round(len(delays) / n, 3) if n else None,
            "start_delay_frames": {"p50": round(float(np.percentile(d, 50)), 1), "p95": round(float(np.percentile(d, 95)), 1),
                                   "max": round(float(d.max()), 1)},
            "missed": [{"start_frame": round(reference.clip_s(ev["start"]) * FPS),
                        "seconds": round((ev["end"] or ev["start"]) - ev["start"], 1), "score": round(ev["score"], 2)}
                       for ev in missed]}


def _step_frame(parts: list[Part]) -> int:
    return parts[-1].first + int(STEP_AT_S * FPS)


def _events_after(run: RunResult, frame: int) -> list[dict]:
    wall = run.wall_at(frame)
    return [e for e in run.events if e["start"] >= wall - 1 / FPS]


def light_step(run: RunResult, parts: list[Part]) -> dict:
    """After the step: events that began, and how long motion (or relearning) kept the gate open."""
    step_frame = _step_frame(parts)
    step_wall = run.wall_at(step_frame)
    events = _events_after(run, step_frame)
    opened = 0.0
    previous = None
    for s in run.samples:
        count = s.reasons.get("motion", 0) + s.reasons.get("settling", 0)
        if previous is not None and count > previous and s.wall > step_wall:
            opened = s.wall - step_wall
        previous = count
    return {"step_frame": step_frame, "events_after_step": len(events), "gate_open_s": round(opened, 1)}


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def summarise(ungated: RunResult, gated: RunResult, step: RunResult | None, step_parts: list[Part] | None) -> dict:
    def part_sum(run: RunResult, name: str, key: str) -> float:
        rows = [p for p in run.parts if p["part"] == name]
        weights = [p["seconds"] for p in rows]
        return sum(p[key] * w for p, w in zip(rows, weights)) / max(sum(weights), 1e-9)

    out = {"ungated": ungated.parts, "gated": gated.parts,
           "empty_cpu_ratio": _ratio(part_sum(gated, "empty", "cpu_s_per_min"), part_sum(ungated, "empty", "cpu_s_per_min")),
           "busy_cpu_ratio": _ratio(part_sum(gated, "busy", "cpu_s_per_min"), part_sum(ungated, "busy", "cpu_s_per_min")),
           "busy_fps_ratio": _ratio(part_sum(gated, "busy", "inference_fps"), part_sum(ungated, "busy", "inference_fps")),
           "sent_share": {"ungated": _share(ungated), "gated": _share(gated)},
           "events": compare_events(ungated, gated), "motion": gated.motion}
    if step is not None:
        out["light_step"] = {**light_step(step, step_parts), "parts": step.parts,
                             "empty_cpu_ratio": _ratio(part_sum(step, "empty", "cpu_s_per_min"),
                                                       part_sum(ungated, "empty", "cpu_s_per_min")),
                             "events": compare_events(ungated, step), "motion": step.motion}
    return out


def summarise_replay(ungated: RunResult, gated: RunResult, step: RunResult, step_frame: int) -> dict:
    """The gate's own effect on events: replays see every frame at its capture time, so the runs
    differ by the gate alone (live runs also differ by which frames each one dropped)."""
    return {"events": compare_events(ungated, gated), "sent_share": {"ungated": _share(ungated), "gated": _share(gated)},
            "light_step_events": len(_events_after(step, step_frame)), "light_step_relearned": (step.motion or {}).get("relearned")}


def _share(run: RunResult) -> float:
    last = run.samples[-1]
    return round(last.inferred / max(last.frames, 1), 3)


def _print(result: dict) -> None:
    print(f"clip: {result['clip']}")
    print(f"{'part':<7} {'frames':>6} | {'CPU s/min':>19} | {'inference fps':>17} | {'sent to model':>17}")
    print(f"{'':<7} {'':>6} | {'off':>6} {'on':>6} {'on/off':>5} | {'off':>5} {'on':>5} {'on/off':>5} | {'off':>7} {'on':>7}")
    for u, g in zip(result["ungated"], result["gated"]):
        print(f"{u['part']:<7} {u['frames']:>6} | {u['cpu_s_per_min']:>6.2f} {g['cpu_s_per_min']:>6.2f} "
              f"{_ratio(g['cpu_s_per_min'], u['cpu_s_per_min']) or 0:>5.2f} | {u['inference_fps']:>5.2f} {g['inference_fps']:>5.2f} "
              f"{_ratio(g['inference_fps'], u['inference_fps']) or 0:>5.2f} | {u['sent_share']:>7.1%} {g['sent_share']:>7.1%}")
    ev = result["events"]
    d = ev["start_delay_frames"]
    print(f"empty parts: CPU {result['empty_cpu_ratio']} x ungated (target <= 0.2); busy part: inference rate "
          f"{result['busy_fps_ratio']} x ungated (target >= 0.95), CPU {result['busy_cpu_ratio']} x")
    print(f"frames sent to the model: {result['sent_share']['ungated']:.1%} ungated, {result['sent_share']['gated']:.1%} gated; "
          f"the motion stage itself: {result['motion_cpu_ms_per_frame']:.2f} ms CPU per frame")
    print(f"the floor: reading and decoding the clip alone, paced at {FPS:g} fps, costs {result['decode_floor_cpu_s_per_min']:.2f} "
          f"CPU s/min here, which no gate saves")
    print(f"events: {ev['recalled']} of {ev['reference_events']} ungated events recalled = {ev['recall']} (target >= 0.98); "
          f"{ev['gated_events']} gated events; start delay p50 {d['p50']} p95 {d['p95']} max {d['max']} frames (target p95 <= 2)")
    for m in ev["missed"]:
        print(f"  missed: starting at frame {m['start_frame']}, {m['seconds']} s long, best score {m['score']}")
    if "replay" in result:
        rp = result["replay"]
        ev, d = rp["events"], rp["events"]["start_delay_frames"]
        print(f"events, replayed (every frame at its capture time: the gate the only difference): {ev['recalled']} of "
              f"{ev['reference_events']} recalled = {ev['recall']} (target >= 0.98); {ev['gated_events']} gated events; start delay "
              f"p50 {d['p50']} p95 {d['p95']} max {d['max']} frames (target p95 <= 2); frames sent {rp['sent_share']['ungated']:.1%} "
              f"ungated, {rp['sent_share']['gated']:.1%} gated; light step: {rp['light_step_events']} events after it")
        for m in ev["missed"]:
            print(f"  missed: starting at frame {m['start_frame']}, {m['seconds']} s long, best score {m['score']}")
    if "light_step" in result:
        ls = result["light_step"]
        print(f"light step (+{STEP - 1:.0%} at frame {ls['step_frame']}): {ls['events_after_step']} events after it (target 0), "
              f"gate open for motion {ls['gate_open_s']} s after it (target <= {GATE_CLOSE_TARGET_S:g}); empty parts CPU "
              f"{ls['empty_cpu_ratio']} x ungated; relearned {ls['motion']['relearned'] if ls['motion'] else '-'}x; "
              f"busy-part events recalled {ls['events']['recall']}")


def annotate_clip(clip: Path, out: Path, fps: float) -> int:
    """`clip` again, as the gate sees it: motion boxes, the model's state and the gate's decision on
    each frame (motion only: no model, no tracks), written as a Motion-JPEG AVI. Returns frames."""
    import cv2

    from ..annotate import draw_motion
    from ..config import MotionConfig
    from ..motion import Gate, MotionDetector

    config = MotionConfig()
    detector, gate = MotionDetector(config), Gate(config.keepalive_s, config.track_refresh_s)

    def frames():
        cap = cv2.VideoCapture(str(clip))
        i = 0
        try:
            while True:
                ok, frame = cap.read()
                if not ok:
                    return
                t = i / fps
                motion = detector.detect(frame, t)
                d = gate.decide(t, motion, 0)
                yield draw_motion(frame, motion.boxes, None,
                                  f"{i / fps:6.1f} s  {motion.state}  {'model: ' + d.reason if d.infer else 'gated'}")
                i += 1
        finally:
            cap.release()

    out.parent.mkdir(parents=True, exist_ok=True)
    return write_clip(out, frames(), fps)


def motion_cost(clip: Path, frames: int = 300) -> float:
    """CPU milliseconds the motion stage takes per frame of `clip` (decoding not counted)."""
    from ..config import MotionConfig
    from ..motion import MotionDetector
    from .footage import read_frames

    images = read_frames(clip, limit=frames)
    detector = MotionDetector(MotionConfig())
    cpu = time.process_time()
    for i, image in enumerate(images):
        detector.detect(image, i / FPS)
    return (time.process_time() - cpu) / len(images) * 1e3


def decode_floor(clip: Path, seconds: float = 30.0) -> float:
    """CPU seconds per minute of reading `clip` alone with the pipeline's own reader, paced at its
    frame rate: the part of any run's cost that no gate can save."""
    from ..sources.opencv import OpenCVSource

    source = OpenCVSource(str(clip))
    source.open()
    try:
        cpu, start = time.process_time(), time.monotonic()
        for _ in range(int(seconds * FPS)):
            source.read()
        return (time.process_time() - cpu) / max(time.monotonic() - start, 1e-9) * 60
    finally:
        source.close()


def run_motion_bench(args: argparse.Namespace) -> int:
    from ..errors import CommandError
    from .. import paths

    model = str(Path(args.model).resolve()) if args.model else str(paths.BUNDLED_MODEL)
    video = str(Path(args.input).resolve()) if args.input else str(paths.BUNDLED_VIDEO)
    empty_s = args.seconds or 60.0
    if empty_s < STEP_AT_S + GATE_CLOSE_TARGET_S:
        raise CommandError(f"--seconds: the empty parts need at least {STEP_AT_S + GATE_CLOSE_TARGET_S:g} s, got {empty_s:g}")
    threads = None
    if args.threads:
        try:
            threads = int(args.threads)
        except ValueError:
            raise CommandError(f"--threads: one integer with --motion, got {args.threads!r}") from None
    say = (lambda *a: None) if args.json else (lambda *a: print(*a, flush=True))
    with tempfile.TemporaryDirectory(prefix="edgewatch-motion-") as tmp:
        tmp = Path(tmp)
        parts, frames = bench_clip(video, empty_s=empty_s, fps=FPS)
        plain = tmp / "plain.avi"
        say(f"writing the clip: {empty_s:g} s empty, {parts[1].count} frames of {Path(video).name}, {empty_s:g} s empty ...")
        write_clip(plain, frames, FPS)
        step_parts, frames = bench_clip(video, empty_s=empty_s, fps=FPS, light_step=STEP, step_at_s=STEP_AT_S)
        stepped = tmp / "step.avi"
        write_clip(stepped, frames, FPS)
        if args.annotate:
            out = Path(args.annotate)
            say(f"writing {out} (the clip with motion boxes and the gate's decisions) ...")
            annotate_clip(stepped, out, FPS)
        cost_ms = motion_cost(plain)
        say("reading the clip alone (the floor) ...")
        floor = decode_floor(plain)
        runs = {}
        for name, clip, clip_parts, motion in (("ungated", plain, parts, False), ("gated", plain, parts, True),
                                               ("light step", stepped, step_parts, True)):
            seconds = sum(p.count for p in clip_parts) / FPS
            say(f"running {name} ({seconds:.0f} s) ...")
            runs[name] = _Run(name, clip, clip_parts, model, threads, motion, bool(args.regions), tmp / name.replace(" ", "-")).play()
        say("replaying each clip frame by frame (ungated, gated, light step) ...")
        replays = {name: _Run(name, clip, [], model, threads, motion, bool(args.regions), tmp / ("replay-" + name.replace(" ", "-"))).replay(clip)
                   for name, clip, motion in (("ungated", plain, False), ("gated", plain, True), ("light step", stepped, True))}
    result = {"measure": "motion", "clip": {"empty_s": empty_s, "busy_frames": parts[1].count, "fps": FPS, "video": video},
              "model": model, "regions": bool(args.regions), "motion_cpu_ms_per_frame": round(cost_ms, 3),
              "decode_floor_cpu_s_per_min": round(floor, 2),
              **summarise(runs["ungated"], runs["gated"], runs["light step"], step_parts),
              "replay": summarise_replay(replays["ungated"], replays["gated"], replays["light step"], _step_frame(step_parts))}
    if args.json:
        print(json.dumps(result))
    else:
        _print(result)
    return exitcodes.OK
