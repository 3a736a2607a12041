"""Which detections count: labels to keep, a minimum score, a minimum box area, zones; and which
zones a box is in (one rule, for the filter and for the zones an event enters)."""

from __future__ import annotations

import logging

import cv2
import numpy as np

from ..detections import Detections
from ..config import DetectConfig

log = logging.getLogger("edgewatch.pipeline")


class Zones:
    """The `[detect] zones`: a box is in a zone when its bottom centre (or centre) lies in it."""

    def __init__(self, detect: DetectConfig):
        self.names = [z.name for z in detect.zones]
        self.point = detect.zone_point
        self.polygons = [np.asarray(z.polygon, np.float32).reshape(-1, 1, 2) for z in detect.zones]

    def __bool__(self) -> bool:
        return bool(self.polygons)

    def points(self, xyxy: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        """Each box's point, as fractions of the frame: (x, y)."""
        x = (xyxy[:, 0] + xyxy[:, 2]) / 2 / width
        y = (xyxy[:, 3] if self.point == "bottom" else (xyxy[:, 1] + xyxy[:, 3]) / 2) / height
        return x, y

    def containing(self, box: np.ndarray, width: int, height: int) -> list[str]:
        """The names of the zones `box` is in, in the config's order."""
        x, y = self.points(np.asarray(box, np.float32).reshape(1, 4), width, height)
        point = (float(x[0]), float(y[0]))
        return [name for name, z in zip(self.names, self.polygons) if cv2.pointPolygonTest(z, point, False) >= 0]


class DetectionFilter:
    def __init__(self, detect: DetectConfig, labels: list[str], low_score: float | None = None):
        """`labels`: the model's, to turn label names into class ids. `low_score`: keep detections
        down to this score (the tracker continues events on them), else down to detect.min_score."""
        self.min_score = detect.min_score if low_score is None else min(low_score, detect.min_score)
        self.min_area = detect.min_area
        self.zones = Zones(detect)
        self.class_ids: np.ndarray | None = None
        if detect.labels:
            unknown = sorted(set(detect.labels) - set(labels))
            if unknown:
                log.warning("detect.labels: %s not among the model's labels (%s)", ", ".join(unknown),
                            ", ".join(labels[:10]) + ("..." if len(labels) > 10 else ""))
            self.class_ids = np.array([i for i, name in enumerate(labels) if name in detect.labels], np.int32)

    def __call__(self, det: Detections, width: int, height: int) -> Detections:
        keep = det.score >= self.min_score
        if self.class_ids is not None:
            keep &= np.isin(det.class_id, self.class_ids)
        if self.min_area > 0:
            keep &= det.area >= self.min_area * width * height
        if self.zones and keep.any():
            x, y = self.zones.points(det.xyxy, width, height)
            for i in np.flatnonzero(keep):
                point = (float(x[i]), float(y[i]))
                keep[i] = any(cv2.pointPolygonTest(z, point, False) >= 0 for z in self.zones.polygons)
        return det if keep.all() else det[keep]
