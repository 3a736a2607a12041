"""Which detections count: labels to keep, a minimum score, a minimum box area, zones."""

from __future__ import annotations

import logging

import cv2
import numpy as np

from ..detections import Detections
from ..config import DetectConfig

log = logging.getLogger("edgewatch.pipeline")


class DetectionFilter:
    def __init__(self, detect: DetectConfig, labels: list[str]):
        """`labels`: the model's, to turn label names into class ids."""
        self.min_score = detect.min_score
        self.min_area = detect.min_area
        self.zone_point = detect.zone_point
        self.zones = [np.asarray(z.polygon, np.float32).reshape(-1, 1, 2) for z in detect.zones]
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
            x = (det.xyxy[:, 0] + det.xyxy[:, 2]) / 2 / width
            y = (det.xyxy[:, 3] if self.zone_point == "bottom" else (det.xyxy[:, 1] + det.xyxy[:, 3]) / 2) / height
            for i in np.flatnonzero(keep):
                point = (float(x[i]), float(y[i]))
                keep[i] = any(cv2.pointPolygonTest(z, point, False) >= 0 for z in self.zones)
        return det if keep.all() else det[keep]
