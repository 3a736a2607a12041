"""The tracker: per-frame Detections in, event lifecycles out.

Every track carries a constant-velocity Kalman filter (motion.py); each frame, every filter is
moved to the frame's capture time and detections are matched against the *predicted* boxes, so a
walker missed for a few frames is found again where it has walked to, not where it was last seen.

Association runs in two stages, as ByteTrack does. Confident detections (score >= `min_score`)
are matched first, to every track; then the low-score ones (`low_score` <= score < `min_score`,
typically the same object half hidden or blurred) may continue a track that is still unmatched,
but never start or confirm one. A track becomes an event after `min_hits` confident detections;
a track that misses a frame before then is dropped (a one-frame flicker makes no event). An event
ends once unseen for `max_missed_s` of capture time, carried meanwhile on its prediction, or at
once when its prediction leaves the frame (it walked out of view).

Memory: a track confirmed near an event lost before it appeared (near where that one would be
now, or where it was last seen) and of a like size is that event found again, and continues it,
instead of starting a new event.

An object that stays within a quarter of its height of one place for `stationary_after_s` is
flagged stationary: it is held still while unseen and kept for `stationary_max_missed_s`, so a
parked car or a person waiting is one event however its detections flicker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..detections import Detections, box_iou
from .assignment import match
from .motion import BoxMotion
from .track import Track, TrackUpdate, new_event_id
from .trajectory import Trajectory

# A track not yet an event is dropped after this many frames in a row without a detection.
TENTATIVE_MISSES = 1
# A new event is the continuation of a lost one when it appears within this many of the lost one's
# heights of where it was last seen or would be now, at a size within this ratio of its own.
RELINK_HEIGHTS = 0.8
RELINK_SIZE_RATIO = 1.5
# An unclaimed confident detection overlapping a box a track took this frame this much is a second
# box on the same object (NMS lets through pairs below its own threshold), not a new object.
DUPLICATE_IOU = 0.4
# Frames closer than this in capture time (a recording replayed as fast as the model takes it)
# count as this far apart: over a few milliseconds, box jitter would read as a huge velocity.
MIN_STEP_S = 1 / 30
STILL_RADIUS = 0.25  # of the box's height: moving less than this from its anchor is staying in place


@dataclass(frozen=True)
class TrackerParams:
    iou: float = 0.3  # a detection continues a track when it overlaps the track's predicted box this much
    min_hits: int = 2  # confident detections before an event starts
    max_missed_s: float = 2.0  # a moving object unseen this long: its event ends
    min_score: float = 0.5  # confident: may start and confirm tracks
    low_score: float = 0.2  # at least this (and below min_score): may only continue an event
    stationary_after_s: float = 10.0
    stationary_max_missed_s: float = 30.0
    trajectory_interval_s: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.iou <= 1:
            raise ValueError(f"iou: must be in (0, 1], got {self.iou}")
        if self.min_hits < 1:
            raise ValueError(f"min_hits: must be >= 1, got {self.min_hits}")
        if not 0 <= self.low_score <= self.min_score <= 1:
            raise ValueError(f"low_score: must be in [0, min_score ({self.min_score:g})], got {self.low_score:g}")
        for name in ("max_missed_s", "stationary_after_s", "stationary_max_missed_s", "trajectory_interval_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: must be > 0, got {getattr(self, name)}")


def _left_the_view(centre: np.ndarray, last_box: np.ndarray, frame_size: tuple[int, int]) -> bool:
    """Its predicted centre is out of the frame and it was last seen at the frame's edge (within
    half its size): what was seen mid-frame cannot have walked out unseen, whatever a velocity
    estimated over irregular frame times says."""
    w, h = frame_size
    if 0 <= centre[0] <= w and 0 <= centre[1] <= h:
        return False
    x1, y1, x2, y2 = (float(v) for v in last_box)
    mx, my = (x2 - x1) / 2, (y2 - y1) / 2
    return x1 <= mx or y1 <= my or x2 >= w - mx or y2 >= h - my


class Tracker:
    def __init__(self, params: TrackerParams = TrackerParams(), id_factory: Callable[[float], str] = new_event_id):
        self.params = params
        self.id_factory = id_factory
        self.tracks: list[Track] = []
        self._motion = BoxMotion()
        self._time: float | None = None  # capture time (mono) the filters were last moved to

    def configure(self, params: TrackerParams) -> None:
        """New parameters (a reload); open tracks carry on under them."""
        self.params = params

    @property
    def open_events(self) -> int:
        return sum(t.started for t in self.tracks)

    def predicted_boxes(self) -> np.ndarray:
        """(N, 4) xyxy: each track's box as its filter has it now, in the order of `tracks`."""
        return self._motion.boxes()

    # -- one frame ----------------------------------------------------------------------------

    def update(self, det: Detections, mono: float, wall: float,
               frame_size: tuple[int, int] | None = None) -> list[TrackUpdate]:
        """Feed one frame's detections (captured at `mono`/`wall`); returns what happened. With the
        frame's (width, height), an unseen object whose predicted centre has left the frame has
        left the view: its event ends at once."""
        p = self.params
        out: list[TrackUpdate] = []
        n = len(self.tracks)
        if n:
            self._motion.predict(np.full(n, max(MIN_STEP_S, mono - self._time) if self._time is not None else 0.0))
        self._time = mono
        boxes, scores, classes = det.xyxy, det.score, det.class_id
        high = np.flatnonzero(scores >= p.min_score)
        low = np.flatnonzero((scores >= p.low_score) & (scores < p.min_score))
        matched_t = np.zeros(n, bool)
        rows_all: list[np.ndarray] = []
        dets_all: list[np.ndarray] = []
        if n and (len(high) or len(low)):
            predicted = self._motion.boxes()
            track_cls = np.fromiter((t.class_id for t in self.tracks), np.int64, n)
            # Confident detections first, to every track; then the low-score ones to the tracks left.
            for pool in (high, low):
                rows = np.flatnonzero(~matched_t)
                if not len(rows) or not len(pool):
                    continue
                sim = box_iou(predicted[rows], boxes[pool]) * (track_cls[rows][:, None] == classes[pool][None, :])
                r, c = match(sim, p.iou)
                matched_t[rows[r]] = True
                rows_all.append(rows[r])
                dets_all.append(pool[c])
                if pool is high:
                    high = np.delete(high, c)
        if rows_all:
            rows = np.concatenate(rows_all)
            dets = np.concatenate(dets_all)
            self._motion.update(rows, boxes[dets])
            centres = self._motion.pos[rows]
            for row, d, centre in zip(rows.tolist(), dets.tolist(), centres.tolist()):
                out += self._hit(self.tracks[row], boxes[d], float(scores[d]), scores[d] >= p.min_score, centre, mono, wall)
        # Unmatched tracks: a tentative one missing a frame is dropped, a stationary one held still.
        keep = np.ones(n, bool)
        still_rows = []
        for i, t in enumerate(self.tracks):
            if matched_t[i]:
                t.misses = 0
                continue
            t.improved = False
            t.misses += 1
            if not t.started:
                keep[i] = t.misses < TENTATIVE_MISSES
            elif frame_size is not None and _left_the_view(self._motion.pos[i, :2], t.box, frame_size):
                keep[i] = False
                out.append(TrackUpdate("end", t))
            elif t.still(p.stationary_after_s):
                still_rows.append(i)
        if still_rows:
            self._motion.stop(np.array(still_rows))
        # New tracks from the confident detections nothing claimed, unless one is a second box on an
        # object a track holds this frame (NMS lets through two boxes on one person that overlap less
        # than its threshold).
        held = np.concatenate(dets_all) if dets_all else np.empty(0, np.int64)
        if len(high) and len(held):
            high = high[box_iou(boxes[high], boxes[held]).max(axis=1) < DUPLICATE_IOU]
        if len(high):
            self._motion.add(boxes[high])
            centres = self._motion.pos[-len(high):]
            for d, centre in zip(high.tolist(), centres.tolist()):
                box = boxes[d].copy()
                track = Track(self.id_factory(wall), int(classes[d]), box, float(scores[d]), float(scores[d]), box,
                              wall, wall, mono, mono, Trajectory(p.trajectory_interval_s),
                              anchor=(centre[0], centre[1]), anchor_mono=mono)
                track.trajectory.add(wall, box)
                self.tracks.append(track)
            keep = np.concatenate([keep, np.ones(len(high), bool)])
        # Tracks confirmed by this frame: an event lost nearby just before continues, else a new one starts.
        for row, t in enumerate(self.tracks):
            if t.started or t.hits < p.min_hits or not keep[row]:
                continue
            old = self._lost_event_for(row)
            if old is None:
                t.started = t.improved = True
                out.append(TrackUpdate("start", t))
            else:
                out += self._relink(old, row, mono)
                keep[row] = False
        if not keep.all():
            self.tracks = [t for t, k in zip(self.tracks, keep) if k]
            self._motion.keep(keep)
        return out + self.expire(mono)

    def _hit(self, t: Track, box: np.ndarray, score: float, confident: bool, centre: list[float],
             mono: float, wall: float) -> list[TrackUpdate]:
        p = self.params
        t.box = box.copy()
        t.score = score
        t.last_seen, t.last_seen_mono = wall, mono
        t.trajectory.add(wall, t.box)
        t.improved = score > t.best_score
        if t.improved:
            t.best_score, t.best_box = score, t.box
        out: list[TrackUpdate] = []
        if (centre[0] - t.anchor[0]) ** 2 + (centre[1] - t.anchor[1]) ** 2 > (STILL_RADIUS * centre[3]) ** 2:
            t.anchor, t.anchor_mono = (centre[0], centre[1]), mono
        elif t.started and not t.stationary and mono - t.anchor_mono >= p.stationary_after_s:
            t.stationary = True
            out.append(TrackUpdate("update", t))
        if confident and not t.started:
            t.hits += 1
        if t.started and t.improved and not out:
            out.append(TrackUpdate("update", t))
        return out

    def _lost_event_for(self, row: int) -> int | None:
        """The row of an event lost before the track at `row` first appeared, near enough and alike
        enough in size to be the same object found again; the nearest such, or None."""
        new = self.tracks[row]
        pos = self._motion.pos
        c_new, h_new = pos[row, :2], pos[row, 3]
        best, best_d = None, RELINK_HEIGHTS
        for i, old in enumerate(self.tracks):
            if not old.started or old.class_id != new.class_id or old.last_seen_mono >= new.first_seen_mono:
                continue
            last = old.box
            h_old = max(float(last[3] - last[1]), 1.0)
            if not 1 / RELINK_SIZE_RATIO <= h_new / h_old <= RELINK_SIZE_RATIO:
                continue
            c_last = (last[:2] + last[2:]) / 2
            # Where it would be now if it kept walking, or where it was last seen if it stopped.
            d = min(np.hypot(*(c_new - pos[i, :2])), np.hypot(*(c_new - c_last))) / h_old
            if d <= best_d:
                best, best_d = i, d
        return best

    def _relink(self, old_row: int, new_row: int, mono: float) -> list[TrackUpdate]:
        """The event at `old_row` continues as the track at `new_row` (dropped by the caller)."""
        old, new = self.tracks[old_row], self.tracks[new_row]
        m = self._motion
        gap = mono - old.last_seen_mono
        last = old.box
        c_last = np.array([(last[0] + last[2]) / 2, (last[1] + last[3]) / 2])
        m.pos[old_row] = m.pos[new_row]
        m.vel[old_row] = m.vel[new_row]
        m.vel[old_row, :2] = (m.pos[new_row, :2] - c_last) / gap if gap > 0 else m.vel[new_row, :2]
        m.p_pp[old_row], m.p_pv[old_row], m.p_vv[old_row] = m.p_pp[new_row], m.p_pv[new_row], m.p_vv[new_row]
        old.box, old.score = new.box, new.score
        old.last_seen, old.last_seen_mono = new.last_seen, new.last_seen_mono
        old.trajectory.add(new.last_seen, new.box)
        old.misses = 0
        old.hits += new.hits
        old.improved = new.best_score > old.best_score
        if old.improved:
            old.best_score, old.best_box = new.best_score, new.best_box
        old.anchor, old.anchor_mono = new.anchor, new.anchor_mono
        return [TrackUpdate("update", old)] if old.improved else []

    def expire(self, mono: float) -> list[TrackUpdate]:
        """End the events unseen for longer than their limit at capture time `mono`."""
        p = self.params
        out = []
        keep = np.ones(len(self.tracks), bool)
        for i, t in enumerate(self.tracks):
            limit = p.stationary_max_missed_s if t.still(p.stationary_after_s) else p.max_missed_s
            if mono - t.last_seen_mono > limit:
                keep[i] = False
                if t.started:
                    out.append(TrackUpdate("end", t))
        if not keep.all():
            self.tracks = [t for t, k in zip(self.tracks, keep) if k]
            self._motion.keep(keep)
        return out

    def close_all(self) -> list[TrackUpdate]:
        """End every open event now (shutdown, or a model with other labels)."""
        out = [TrackUpdate("end", t) for t in self.tracks if t.started]
        self.tracks = []
        self._motion.keep(np.zeros(len(self._motion), bool))
        return out
