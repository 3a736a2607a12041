"""An IoU tracker, per class: per-frame Detections in, event lifecycles out.

Each detection is matched greedily (highest IoU first) to a live track of its own class. A track
becomes an event after `min_hits` detections (a one-frame flicker makes no event), is updated
whenever its best score improves, and ends once unseen for `max_missed_s` of capture time.
Times are the frames' capture times, so a slow model does not stretch or shift events.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Callable, Literal

import numpy as np

from .detections import Detections, box_iou

Kind = Literal["start", "update", "end"]


def new_event_id(wall: float) -> str:
    """Sortable by start time (milliseconds, hex) and unique across restarts (random suffix)."""
    return f"{int(wall * 1000):011x}-{secrets.token_hex(3)}"


@dataclass
class Track:
    id: str
    class_id: int
    box: np.ndarray  # last box, xyxy source pixels
    score: float  # last score
    best_score: float
    best_box: np.ndarray
    first_seen: float  # wall clock of the first detection
    last_seen: float  # wall clock of the last detection
    last_seen_mono: float
    hits: int = 1
    started: bool = False
    improved: bool = field(default=False, repr=False)  # best score rose in the last update


@dataclass(frozen=True)
class TrackUpdate:
    kind: Kind
    track: Track


class IoUTracker:
    def __init__(self, iou: float = 0.3, min_hits: int = 2, max_missed_s: float = 2.0,
                 id_factory: Callable[[float], str] = new_event_id):
        if not 0 < iou <= 1:
            raise ValueError(f"iou must be in (0, 1], got {iou}")
        self.iou = iou
        self.min_hits = min_hits
        self.max_missed_s = max_missed_s
        self.id_factory = id_factory
        self.tracks: list[Track] = []

    def configure(self, iou: float, min_hits: int, max_missed_s: float) -> None:
        """New parameters for the tracks to come (a reload); open tracks carry on."""
        self.iou, self.min_hits, self.max_missed_s = iou, min_hits, max_missed_s

    @property
    def open_events(self) -> int:
        return sum(t.started for t in self.tracks)

    def update(self, det: Detections, mono: float, wall: float) -> list[TrackUpdate]:
        """Feed one frame's detections (captured at `mono`/`wall`); returns what happened."""
        out: list[TrackUpdate] = []
        matched_tracks: set[int] = set()
        for cls in np.unique(det.class_id):
            d_idx = np.flatnonzero(det.class_id == cls)
            t_idx = [i for i, t in enumerate(self.tracks) if t.class_id == cls]
            taken = np.zeros(len(d_idx), bool)
            if t_idx:
                iou = box_iou(np.stack([self.tracks[i].box for i in t_idx]), det.xyxy[d_idx])
                for flat in np.argsort(-iou, axis=None, kind="stable"):
                    ti, di = divmod(int(flat), len(d_idx))
                    if iou[ti, di] < self.iou:
                        break
                    if t_idx[ti] in matched_tracks or taken[di]:
                        continue
                    matched_tracks.add(t_idx[ti])
                    taken[di] = True
                    out += self._hit(self.tracks[t_idx[ti]], det, d_idx[di], mono, wall)
            for di in d_idx[~taken]:
                track = Track(self.id_factory(wall), int(cls), det.xyxy[di].copy(), float(det.score[di]),
                              float(det.score[di]), det.xyxy[di].copy(), wall, wall, mono)
                self.tracks.append(track)
                matched_tracks.add(len(self.tracks) - 1)
                if self.min_hits <= 1:
                    track.started = track.improved = True
                    out.append(TrackUpdate("start", track))
        for i, t in enumerate(self.tracks):
            if i not in matched_tracks:
                t.improved = False
        return out + self.expire(mono)

    def _hit(self, t: Track, det: Detections, i: int, mono: float, wall: float) -> list[TrackUpdate]:
        t.box = det.xyxy[i].copy()
        t.hits += 1
        t.last_seen, t.last_seen_mono = wall, mono
        t.score = float(det.score[i])
        t.improved = t.score > t.best_score
        if t.improved:
            t.best_score, t.best_box = t.score, t.box
        if not t.started and t.hits >= self.min_hits:
            t.started = t.improved = True
            return [TrackUpdate("start", t)]
        if t.started and t.improved:
            return [TrackUpdate("update", t)]
        return []

    def expire(self, mono: float) -> list[TrackUpdate]:
        """End the tracks unseen for longer than `max_missed_s` at capture time `mono`."""
        keep, out = [], []
        for t in self.tracks:
            if mono - t.last_seen_mono > self.max_missed_s:
                if t.started:
                    out.append(TrackUpdate("end", t))
            else:
                keep.append(t)
        self.tracks = keep
        return out

    def close_all(self) -> list[TrackUpdate]:
        """End every open event now (shutdown, or a model with other labels)."""
        out = [TrackUpdate("end", t) for t in self.tracks if t.started]
        self.tracks = []
        return out
