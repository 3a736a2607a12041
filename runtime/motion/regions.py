"""Regions: crops of the frame around what moves, at the model's resolution, so that a small
(distant) object is seen with more pixels than when the whole frame is squeezed into the model.

    crops = plan_regions(boxes, (frame_w, frame_h), (model_w, model_h))
    # None: run the whole frame. Else up to `max_regions` (x1, y1, x2, y2) crops, one invoke each.

Boxes (motion, and the live tracks' last boxes so a stationary object stays in view) are grown by
`margin` of their size on each side, then grouped: a box joins a group when the group's crop
would still be no larger than the model's own input; each group becomes one crop of the model's
aspect, at least the model's size (never upscaled beyond 1:1), moved inside the frame. When the
crops would cover much of the frame anyway (`max_share`), or there are more groups than
`max_regions`, the whole frame is cheaper and sees as much: None.
"""

from __future__ import annotations

import numpy as np

from ..detections import Detections
from ..decoders.nms import greedy_nms

MARGIN = 0.25  # of a box's larger side, added on each side: context for the detector
MAX_SHARE = 0.5  # crops covering more of the frame than this: run the whole frame instead
EDGE_PX = 2  # a detection this close to a crop's inner edge was cut by it
MERGE_IOU = 0.5


def _crop(x1: float, y1: float, x2: float, y2: float, frame: tuple[int, int], model: tuple[int, int]) -> tuple[int, int, int, int]:
    """The smallest crop of the model's aspect, at least the model's size, holding the box, inside the frame."""
    fw, fh = frame
    mw, mh = model
    w, h = max(x2 - x1, mw), max(y2 - y1, mh)
    aspect = mw / mh
    w, h = max(w, h * aspect), max(h, w / aspect)
    if w > fw:
        w, h = fw, min(fh, fw / aspect)
    if h > fh:
        h, w = fh, min(fw, fh * aspect)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    left = min(max(cx - w / 2, 0), fw - w)
    top = min(max(cy - h / 2, 0), fh - h)
    return int(round(left)), int(round(top)), int(round(left + w)), int(round(top + h))


def plan_regions(boxes: np.ndarray, frame: tuple[int, int], model: tuple[int, int], *, max_regions: int = 4,
                 margin: float = MARGIN, max_share: float = MAX_SHARE) -> list[tuple[int, int, int, int]] | None:
    """Crops (x1, y1, x2, y2) in frame pixels covering `boxes` (xyxy, frame pixels), or None for
    the whole frame (see the module docstring). No boxes: None (nothing to crop around)."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    if not len(boxes):
        return None
    fw, fh = frame
    mw, mh = model
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) * margin
    grown = np.stack([boxes[:, 0] - side, boxes[:, 1] - side, boxes[:, 2] + side, boxes[:, 3] + side], axis=1)
    grown = np.clip(grown, 0, np.array([fw, fh, fw, fh], np.float32))
    order = np.argsort(-(grown[:, 2] - grown[:, 0]) * (grown[:, 3] - grown[:, 1]), kind="stable")
    groups: list[list[float]] = []
    for i in order:
        b = grown[i]
        for g in groups:
            u = [min(g[0], b[0]), min(g[1], b[1]), max(g[2], b[2]), max(g[3], b[3])]
            if u[2] - u[0] <= mw and u[3] - u[1] <= mh:
                g[:] = u
                break
        else:
            groups.append([float(v) for v in b])
    if len(groups) > max_regions:
        return None
    crops = [_crop(*g, frame, model) for g in groups]
    covered = sum((c[2] - c[0]) * (c[3] - c[1]) for c in crops)
    if covered > max_share * fw * fh:
        return None
    return crops


def merge(parts: list[tuple[tuple[int, int, int, int], Detections]], frame: tuple[int, int], iou: float = MERGE_IOU) -> Detections:
    """One frame's detections from its crops' (each in frame pixels): a box that touches a crop's
    edge inside the frame was cut by the crop and is dropped when another crop saw more of it;
    overlapping boxes from two crops become the better one (greedy NMS, per class)."""
    fw, fh = frame
    kept = []
    for (x1, y1, x2, y2), det in parts:
        if not len(det):
            continue
        b = det.xyxy
        cut = np.zeros(len(det), bool)
        if x1 > 0:
            cut |= b[:, 0] <= x1 + EDGE_PX
        if y1 > 0:
            cut |= b[:, 1] <= y1 + EDGE_PX
        if x2 < fw:
            cut |= b[:, 2] >= x2 - EDGE_PX
        if y2 < fh:
            cut |= b[:, 3] >= y2 - EDGE_PX
        kept.append((det, cut))
    if not kept:
        return Detections.empty()
    whole = Detections.concatenate([d[~c] for d, c in kept])
    cut = Detections.concatenate([d[c] for d, c in kept])
    if len(cut):
        # a cut box survives only where no whole box overlaps it
        from_whole = np.zeros(len(cut), bool) if not len(whole) else (_overlap(cut.xyxy, whole.xyxy) > 0.3).any(axis=1)
        cut = cut[~from_whole]
    both = Detections.concatenate([whole, cut])
    return greedy_nms(both, iou) if len(both) > 1 else both


def _overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Share of each box in `a` covered by each box in `b`."""
    ix = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    area = np.maximum((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]), 1e-6)
    return ix * iy / area[:, None]


def detect_in(detector, image: np.ndarray, crops: list[tuple[int, int, int, int]]) -> tuple[Detections, float]:
    """`detector` (runtime.detector.Detector) run on each crop of `image`: the detections merged,
    in frame pixels, and the milliseconds spent invoking, all crops together."""
    h, w = image.shape[:2]
    parts = []
    invoke_ms = 0.0
    for x1, y1, x2, y2 in crops:
        det = detector.detect(image[y1:y2, x1:x2])
        invoke_ms += detector.timings.invoke_ms
        parts.append(((x1, y1, x2, y2), det.scaled(1.0, 1.0, float(x1), float(y1))))
    return merge(parts, (w, h)), invoke_ms
