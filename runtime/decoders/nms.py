"""Non-maximum suppression on whole arrays: greedy (per class) and weighted (BlazeFace)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..detections import Detections, box_iou
from ..table import Table


def greedy_nms(det: Detections, iou_threshold: float, max_detections: int = 100, per_class: bool = True) -> Detections:
    """Keep the best box, drop every box overlapping it by IoU > threshold, repeat.

    Per class by offsetting each class's boxes into a disjoint region, so one pass serves all
    classes. Lower boxes never suppress higher ones, so the result over boxes above a score
    threshold equals the result of NMS run on all boxes and then thresholded.
    """
    if len(det) == 0:
        return det
    boxes = det.xyxy.astype(np.float64)
    if per_class:
        span = float(np.abs(boxes).max()) * 2 + 1.0
        boxes = boxes + (det.class_id.astype(np.float64) * span)[:, None]
    order = np.argsort(-det.score, kind="stable")
    keep: list[int] = []
    while order.size and len(keep) < max_detections:
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        if not rest.size:
            break
        overlap = box_iou(boxes[best : best + 1], boxes[rest])[0]
        order = rest[overlap <= iou_threshold]
    return det[np.asarray(keep, dtype=np.int64)]


def weighted_nms(det: Detections, iou_threshold: float, max_detections: int = 100) -> Detections:
    """MediaPipe's weighted NMS: each cluster of overlapping boxes becomes their score-weighted mean.

    The cluster's score is its best member's; keypoints are averaged with the same weights. This is
    what BlazeFace's graph uses; it steadies boxes from frame to frame.
    """
    if len(det) == 0:
        return det
    order = np.argsort(-det.score, kind="stable")
    xyxy, score, kps, cls = [], [], [], []
    while order.size and len(xyxy) < max_detections:
        best = int(order[0])
        overlap = box_iou(det.xyxy[best : best + 1], det.xyxy[order])[0]
        cluster = overlap > iou_threshold
        cluster[0] = True  # the best box is its own cluster even when degenerate (IoU with itself 0)
        members = order[cluster]
        w = det.score[members][:, None]
        total = float(w.sum())
        xyxy.append((det.xyxy[members] * w).sum(0) / total)
        if det.keypoints is not None:
            kps.append((det.keypoints[members] * w[:, :, None]).sum(0) / total)
        score.append(det.score[best])
        cls.append(det.class_id[best])
        order = order[~cluster]
    return Detections(np.stack(xyxy), np.asarray(score), np.asarray(cls), np.stack(kps) if kps else None)


def suppress(det: Detections, method: str, iou_threshold: float, max_detections: int, per_class: bool = True) -> Detections:
    if method == "weighted":
        return weighted_nms(det, iou_threshold, max_detections)
    if method == "greedy":
        return greedy_nms(det, iou_threshold, max_detections, per_class)
    if method == "none":
        return det.sorted_by_score()[:max_detections]
    raise ValueError(f"nms.method: {method!r} is not one of greedy, weighted, none")


@dataclass(frozen=True)
class NmsParams:
    method: str = "greedy"
    iou: float = 0.5
    max_detections: int = 100
    per_class: bool = True

    def apply(self, det: Detections) -> Detections:
        return suppress(det, self.method, self.iou, self.max_detections, self.per_class)


def parse_nms(raw: object, where: str, default: NmsParams = NmsParams()) -> NmsParams:
    t = Table(raw if raw is not None else {}, where, "output.params.nms")
    p = NmsParams(
        method=t.str("method", default.method, ("greedy", "weighted", "none")),
        iou=t.number("iou", default.iou, gt=0, le=1),
        max_detections=t.number("max_detections", default.max_detections, integer=True, gt=0),
        per_class=t.bool("per_class", default.per_class),
    )
    t.done()
    return p
