"""Drawing onto frames: detections for `detect --annotate` and the daemon's event snapshots, and
tracks with their recent path for the live view."""

from __future__ import annotations

import zlib

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


def draw_tracks(image: np.ndarray, tracks, trails: dict[str, list[tuple[int, int]]], scale: float = 1.0) -> None:
    """Draw, in place, each track's box (solid once it is an event, thin while tentative or unseen
    in this frame), its short id, and its trail of recent bottom centres. `tracks`: objects with
    id, class_id, box (xyxy in source pixels, multiplied by `scale` here), confirmed, seen."""
    thick = max(1, round(2 * max(image.shape[:2]) / 640))
    for t in tracks:
        colour = _PALETTE[zlib.crc32(t.id.encode()) % len(_PALETTE)]
        trail = trails.get(t.id, [])
        if len(trail) > 1:
            cv2.polylines(image, [np.array(trail, np.int32)], False, colour, thick, cv2.LINE_AA)
        x1, y1, x2, y2 = (int(round(v * scale)) for v in t.box)
        cv2.rectangle(image, (x1, y1), (x2, y2), colour, thick if t.confirmed and t.seen else 1)
        if t.confirmed:
            cv2.putText(image, t.id[-6:], (x1 + 2, max(12, y2 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1, cv2.LINE_AA)


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
