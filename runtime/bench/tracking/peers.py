"""The trackers under test, behind one interface: edgewatch's own, and, when installed, ByteTrack
(the `trackers` package) and norfair (IoU distance with its Kalman filter, as Frigate runs it).

Each is set up from the same settings where it has a counterpart (the score that starts a track,
the detections before a track counts, how long an unseen track is kept) and at its own defaults
elsewhere. `prepare` turns Detections into the tracker's own input outside the timed part;
`update` is the tracker's own work; `seen` lists what the tracker itself reports after a frame, as
(track id, box, sighted) triples: ByteTrack its tracks matched in that frame, norfair every
initialised object at its filter's estimate, edgewatch every open event at its detection, or at
its prediction while unseen. `sighted`: a detection in this frame is the track's (an event's span
runs from its first to its last sighting).
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np

from ...detections import Detections
from ...tracking import Tracker, TrackerParams

NORFAIR_IOU_DISTANCE = 0.7  # 1 - IoU: the same overlap (0.3) edgewatch's default asks for


class Edgewatch:
    name = "edgewatch"

    def __init__(self, params: TrackerParams, fps: float, frame_size: tuple[int, int] | None = None):
        ids = itertools.count(1)
        self.tracker = Tracker(params, id_factory=lambda wall: next(ids))
        self.frame_size = frame_size
        self._t = 0.0

    def prepare(self, det: Detections) -> Detections:
        return det

    def update(self, t: float, det: Detections) -> None:
        self._t = t
        self.tracker.update(det, t, t, self.frame_size)

    def seen(self) -> list[tuple[object, np.ndarray, bool]]:
        predicted = self.tracker.predicted_boxes()
        return [(tr.id, tr.box, True) if tr.last_seen_mono == self._t else (tr.id, predicted[i], False)
                for i, tr in enumerate(self.tracker.tracks) if tr.started]


class ByteTrack:
    name = "bytetrack"

    def __init__(self, params: TrackerParams, fps: float, frame_size: tuple[int, int] | None = None):
        from trackers import ByteTrackTracker

        self.sv = __import__("supervision")
        self.tracker = ByteTrackTracker(
            lost_track_buffer=int(round(params.max_missed_s * 30)),  # its unit: frames at 30 fps
            frame_rate=fps, track_activation_threshold=params.min_score, high_conf_det_threshold=params.min_score,
            minimum_consecutive_frames=params.min_hits)
        self._result = None

    def prepare(self, det: Detections):
        return self.sv.Detections(xyxy=det.xyxy.astype(np.float64), confidence=det.score.astype(np.float64),
                                  class_id=det.class_id.astype(int))

    def update(self, t: float, det) -> None:
        self._result = self.tracker.update(det, timestamp=t)

    def seen(self) -> list[tuple[object, np.ndarray, bool]]:
        r = self._result
        return [(int(i), b, True) for i, b in zip(r.tracker_id, r.xyxy) if i >= 0]


class Norfair:
    name = "norfair"

    def __init__(self, params: TrackerParams, fps: float, frame_size: tuple[int, int] | None = None):
        import norfair

        self.nf = norfair
        self.min_score = params.min_score
        # The hit counter goes up per match and down per miss: at its maximum, an unseen track
        # lasts that many frames. Reported once it exceeds initialization_delay.
        self.tracker = norfair.Tracker(
            distance_function="iou", distance_threshold=NORFAIR_IOU_DISTANCE,
            hit_counter_max=max(1, int(round(params.max_missed_s * fps))),
            initialization_delay=params.min_hits - 1,
            filter_factory=norfair.OptimizedKalmanFilterFactory())
        self._objects: list = []
        self._given: set[int] = set()

    def prepare(self, det: Detections) -> list:
        keep = det.score >= self.min_score  # no low-score stage: what it is given, it may start from
        return [self.nf.Detection(points=box.reshape(2, 2).astype(np.float64), scores=np.array([s, s]))
                for box, s in zip(det.xyxy[keep], det.score[keep])]

    def update(self, t: float, det: list) -> None:
        self._given = {id(d) for d in det}
        self._objects = self.tracker.update(detections=det)

    def seen(self) -> list[tuple[object, np.ndarray, bool]]:
        return [(o.id, o.estimate.reshape(4), id(o.last_detection) in self._given) for o in self._objects if o.id is not None]


PEERS = {"edgewatch": Edgewatch, "bytetrack": ByteTrack, "norfair": Norfair}


def available(names: list[str]) -> tuple[list[str], dict[str, str]]:
    """The trackers among `names` that can run here, and why the others cannot."""
    ok, missing = [], {}
    for name in names:
        try:
            PEERS[name](replace(TrackerParams()), 10.0)
        except ImportError as exc:
            missing[name] = f"not installed ({exc.name or exc})"
        else:
            ok.append(name)
    return ok, missing


def run(name: str, params: TrackerParams, fps: float, frames: list[tuple[float, Detections]],
        frame_size: tuple[int, int] | None = None) -> list[tuple[float, list[tuple[object, np.ndarray, bool]]]]:
    """Every frame (of `frame_size`, width and height) through a fresh tracker: [(time, seen), ...]."""
    tracker = PEERS[name](params, fps, frame_size)
    out = []
    for t, det in frames:
        tracker.update(t, tracker.prepare(det))
        out.append((t, tracker.seen()))
    return out
