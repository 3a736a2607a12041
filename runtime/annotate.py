"""Drawing detections onto a frame: for `detect --annotate` and the daemon's event snapshots."""

from __future__ import annotations

import cv2
import numpy as np

from .detections import Detections, label_for

_PALETTE = [(56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207), (10, 249, 72), (23, 204, 146), (134, 219, 61)]


def draw_detections(frame: np.ndarray, det: Detections, labels: list[str] | None = None) -> np.ndarray:
    """A copy of the BGR frame with each box, its label and score, and keypoints if any."""
    out = frame.copy()
    scale = max(out.shape[:2]) / 640
    thick = max(1, round(2 * scale))
    for i in range(len(det)):
        x1, y1, x2, y2 = (int(round(v)) for v in det.xyxy[i])
        colour = _PALETTE[int(det.class_id[i]) % len(_PALETTE)]
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thick)
        text = f"{label_for(labels, int(det.class_id[i]))} {det.score[i]:.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, max(1, thick - 1))
        ty = max(y1, th + base)
        cv2.rectangle(out, (x1, ty - th - base), (x1 + tw, ty), colour, -1)
        cv2.putText(out, text, (x1, ty - base), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, (255, 255, 255), max(1, thick - 1), cv2.LINE_AA)
        if det.keypoints is not None:
            for kx, ky in det.keypoints[i]:
                cv2.circle(out, (int(round(kx)), int(round(ky))), thick + 1, colour, -1)
    return out


MOTION_COLOUR = (0, 215, 255)  # amber: not a detection


def draw_motion(frame: np.ndarray, boxes: np.ndarray, ignored: np.ndarray | None = None, text: str | None = None,
                out: np.ndarray | None = None) -> np.ndarray:
    """Motion boxes (xyxy, source pixels) drawn thin on a copy of the BGR frame (or on `out`), the
    area a mask ignores (bool, frame-sized) darkened, and a line of `text` at the top."""
    out = frame.copy() if out is None else out
    if ignored is not None and ignored.any():
        out[ignored] = (out[ignored] * 0.4).astype(np.uint8)
    scale = max(out.shape[:2]) / 640
    for x1, y1, x2, y2 in np.asarray(boxes, np.float32).reshape(-1, 4):
        cv2.rectangle(out, (int(x1), int(y1)), (int(x2), int(y2)), MOTION_COLOUR, max(1, round(scale)))
    if text:
        cv2.putText(out, text, (round(8 * scale), round(20 * scale)), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale,
                    MOTION_COLOUR, max(1, round(scale)), cv2.LINE_AA)
    return out
