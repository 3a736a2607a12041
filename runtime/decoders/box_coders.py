"""Box coders: raw regressions + anchors -> normalised xyxy boxes (and keypoints).

Anchors are (N, 4) [cy, cx, h, w] (see anchors.py).
"""

from __future__ import annotations

import numpy as np


def decode_ssd(raw: np.ndarray, anchors: np.ndarray, scales: tuple[float, float, float, float]) -> np.ndarray:
    """TF OD API FasterRcnnBoxCoder: raw [ty, tx, th, tw], scales [y, x, h, w] (10, 10, 5, 5)."""
    ys, xs, hs, ws = scales
    ay, ax, ah, aw = anchors[:, 0], anchors[:, 1], anchors[:, 2], anchors[:, 3]
    cy = raw[:, 0] / ys * ah + ay
    cx = raw[:, 1] / xs * aw + ax
    h = np.exp(raw[:, 2] / hs) * ah
    w = np.exp(raw[:, 3] / ws) * aw
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def decode_mediapipe(
    raw: np.ndarray, anchors: np.ndarray, scales: tuple[float, float, float, float], num_keypoints: int = 0
) -> tuple[np.ndarray, np.ndarray | None]:
    """MediaPipe TensorsToDetections: raw [dx, dy, w, h, kx0, ky0, ...] over a fixed input scale.

    scales are [x, y, w, h] (for BlazeFace all 128: offsets are in input pixels).
    """
    xs, ys, ws, hs = scales
    ay, ax, ah, aw = anchors[:, 0], anchors[:, 1], anchors[:, 2], anchors[:, 3]
    cx = raw[:, 0] / xs * aw + ax
    cy = raw[:, 1] / ys * ah + ay
    w = raw[:, 2] / ws * aw
    h = raw[:, 3] / hs * ah
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    if not num_keypoints:
        return boxes, None
    kp = raw[:, 4 : 4 + 2 * num_keypoints].reshape(-1, num_keypoints, 2)
    kx = kp[:, :, 0] / xs * aw[:, None] + ax[:, None]
    ky = kp[:, :, 1] / ys * ah[:, None] + ay[:, None]
    return boxes, np.stack([kx, ky], axis=2)
