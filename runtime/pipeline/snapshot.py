"""Event snapshots: a JPEG of the frame where the object scored best, box drawn or cropped."""

from __future__ import annotations

import cv2
import numpy as np

from ..annotate import draw_detections
from ..detections import Detections
from ..sources import Frame

CROP_MARGIN = 0.15  # of the box's size on each side, so a crop shows some context


def encode(frame: Frame, box: np.ndarray, class_id: int, score: float, labels: list[str], mode: str, quality: int) -> bytes | None:
    """The snapshot for one object, or None for mode 'none' or a failed encode."""
    if mode == "none":
        return None
    image = frame.image
    box = np.asarray(box, np.float32)
    if frame.full is not None:  # draw on the larger stream the same instant was captured in
        sy = frame.full.shape[0] / frame.image.shape[0]
        sx = frame.full.shape[1] / frame.image.shape[1]
        image, box = frame.full, box * np.array([sx, sy, sx, sy], np.float32)
    if mode == "crop":
        h, w = image.shape[:2]
        mx, my = (box[2] - box[0]) * CROP_MARGIN, (box[3] - box[1]) * CROP_MARGIN
        x1, y1 = int(max(0, box[0] - mx)), int(max(0, box[1] - my))
        x2, y2 = int(min(w, box[2] + mx + 1)), int(min(h, box[3] + my + 1))
        if x2 <= x1 or y2 <= y1:
            return None
        out = image[y1:y2, x1:x2]
    else:
        out = draw_detections(image, Detections(box[None], [score], [class_id]), labels)
    ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return buf.tobytes() if ok else None
