"""Real footage for the tracking bench: a model's detections over a whole video, computed once and
cached (every tracker then runs on the very same detections), and what a user would see of the
events a tracker makes of them: how many, how many flickers, how many restarts.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...detections import Detections

# The decoder's cut for the cache: low enough for every tracker's low-score stage.
CACHE_SCORE = 0.1
RESTART_WITHIN_S = 2.0
RESTART_WITHIN_HEIGHTS = 0.75
SHORT_S = 1.0


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(base) if base and os.path.isabs(base) else Path.home() / ".cache") / "edgewatch"


def video_detections(model: Path, video: Path, variant: str | None = None, threads: int | None = None,
                     max_frames: int | None = None, cache: Path | None = None
                     ) -> tuple[float, tuple[int, int], list[tuple[float, Detections]]]:
    """(the video's fps, its (width, height), [(time s, detections at score >= CACHE_SCORE), ...]
    for every frame)."""
    import cv2

    from ...detector import Detector, DetectorOptions

    det = Detector.create_from_options(DetectorOptions(str(model), variant, threads, score_threshold=CACHE_SCORE))
    stat = video.stat()
    key = hashlib.sha256(f"{det.sha256} {det.variant.name} {CACHE_SCORE} {video.resolve()} {stat.st_size} "
                         f"{stat.st_mtime_ns} {max_frames}".encode()).hexdigest()[:16]
    path = (cache or cache_dir()) / f"detections-{video.stem}-{key}.npz"
    if path.is_file():
        data = np.load(path)
        counts = data["counts"]
        edges = np.concatenate([[0], np.cumsum(counts)])
        frames = [(float(t), Detections(data["xyxy"][a:b], data["score"][a:b], data["class_id"][a:b]))
                  for t, a, b in zip(data["times"], edges[:-1], edges[1:])]
        return float(data["fps"]), (int(data["size"][0]), int(data["size"][1])), frames
    cap = cv2.VideoCapture(str(video))
    fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    frames = []
    size = (0, 0)
    while max_frames is None or len(frames) < max_frames:
        ok, image = cap.read()
        if not ok:
            break
        size = (image.shape[1], image.shape[0])
        frames.append((len(frames) / fps, det.detect(image)))
    cap.release()
    if not frames:
        raise ValueError(f"{video}: no frames")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, fps=fps, size=np.array(size), times=np.array([t for t, _ in frames]),
                        counts=np.array([len(d) for _, d in frames]),
                        xyxy=np.concatenate([d.xyxy for _, d in frames]).reshape(-1, 4),
                        score=np.concatenate([d.score for _, d in frames]),
                        class_id=np.concatenate([d.class_id for _, d in frames]))
    tmp.replace(path)
    return fps, size, frames


@dataclass(frozen=True)
class EventTrace:
    """One event as a user sees it: from its first to its last sighting."""

    id: object
    start: float
    end: float
    first_box: np.ndarray
    last_box: np.ndarray


def traces(reports: list[tuple[float, list[tuple[object, np.ndarray, bool]]]]) -> list[EventTrace]:
    """Events from per-frame (time, [(track id, box, sighted), ...]): each id's first and last sighting."""
    first: dict[object, tuple[float, np.ndarray]] = {}
    last: dict[object, tuple[float, np.ndarray]] = {}
    for t, seen in reports:
        for tid, box, sighted in seen:
            if not sighted:
                continue
            first.setdefault(tid, (t, box))
            last[tid] = (t, box)
    return sorted((EventTrace(tid, first[tid][0], last[tid][0], np.asarray(first[tid][1]), np.asarray(last[tid][1]))
                   for tid in first), key=lambda e: (e.start, str(e.id)))


def restarts(events: list[EventTrace], within_s: float = RESTART_WITHIN_S,
             within_heights: float = RESTART_WITHIN_HEIGHTS) -> int:
    """Events that start within `within_s` after another ended, within `within_heights` of that
    one's last box height from where it was last seen: the same object, most likely, split in two."""
    count = 0
    for e in events:
        c = (e.first_box[:2] + e.first_box[2:]) / 2
        for f in events:
            if f is e or not (f.end <= e.start <= f.end + within_s):
                continue
            h = f.last_box[3] - f.last_box[1]
            if np.hypot(*(c - (f.last_box[:2] + f.last_box[2:]) / 2)) <= within_heights * h:
                count += 1
                break
    return count


def summary(events: list[EventTrace]) -> dict:
    n = len(events)
    return {"events": n,
            "short_share": sum(e.end - e.start < SHORT_S for e in events) / n if n else 0.0,
            "restarts": restarts(events),
            "restart_share": restarts(events) / n if n else 0.0}
