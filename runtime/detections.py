"""`Detections`: the one struct of arrays that every stage speaks.

Decoders produce it, NMS filters it, the tracker consumes it. Boxes are `xyxy`; whether they are in
normalised model-input coordinates or in source pixels depends on the stage (decoders emit
normalised boxes, `Detector.detect` returns source pixels). Validated once, at construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Detections:
    xyxy: np.ndarray  # (N, 4) float32: x1, y1, x2, y2
    score: np.ndarray  # (N,) float32
    class_id: np.ndarray  # (N,) int32
    keypoints: np.ndarray | None = field(default=None)  # (N, K, 2) float32 (x, y), same frame as xyxy

    def __post_init__(self) -> None:
        xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        n = len(xyxy)
        score = np.asarray(self.score, dtype=np.float32).reshape(-1)
        class_id = np.asarray(self.class_id, dtype=np.int32).reshape(-1)
        if len(score) != n or len(class_id) != n:
            raise ValueError(
                f"Detections: xyxy has {n} rows but score has {len(score)} and class_id {len(class_id)}"
            )
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "score", score)
        object.__setattr__(self, "class_id", class_id)
        if self.keypoints is not None:
            kp = np.asarray(self.keypoints, dtype=np.float32)
            if kp.ndim != 3 or kp.shape[0] != n or kp.shape[2] != 2:
                raise ValueError(f"Detections: keypoints must be (N={n}, K, 2), got {kp.shape}")
            object.__setattr__(self, "keypoints", kp)

    @classmethod
    def empty(cls, num_keypoints: int | None = None) -> Detections:
        kp = None if num_keypoints is None else np.zeros((0, num_keypoints, 2), np.float32)
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32), kp)

    def __len__(self) -> int:
        return len(self.score)

    def __getitem__(self, index) -> Detections:
        """Select by boolean mask, integer array or slice; always returns `Detections`."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        kp = None if self.keypoints is None else self.keypoints[index]
        return Detections(self.xyxy[index], self.score[index], self.class_id[index], kp)

    @property
    def area(self) -> np.ndarray:
        return np.clip(self.xyxy[:, 2] - self.xyxy[:, 0], 0, None) * np.clip(
            self.xyxy[:, 3] - self.xyxy[:, 1], 0, None
        )

    def sorted_by_score(self) -> Detections:
        return self[np.argsort(-self.score, kind="stable")]

    def scaled(self, sx: float, sy: float, dx: float = 0.0, dy: float = 0.0) -> Detections:
        """Map every coordinate by x' = x * sx + dx, y' = y * sy + dy."""
        mul = np.array([sx, sy, sx, sy], np.float32)
        add = np.array([dx, dy, dx, dy], np.float32)
        kp = None
        if self.keypoints is not None:
            kp = self.keypoints * np.array([sx, sy], np.float32) + np.array([dx, dy], np.float32)
        return Detections(self.xyxy * mul + add, self.score, self.class_id, kp)

    def clipped(self, width: float, height: float) -> Detections:
        lim = np.array([width, height, width, height], np.float32)
        return Detections(np.clip(self.xyxy, 0, lim), self.score, self.class_id, self.keypoints)

    @staticmethod
    def concatenate(parts: list[Detections]) -> Detections:
        parts = [p for p in parts if len(p)]
        if not parts:
            return Detections.empty()
        has_kp = all(p.keypoints is not None for p in parts)
        return Detections(
            np.concatenate([p.xyxy for p in parts]),
            np.concatenate([p.score for p in parts]),
            np.concatenate([p.class_id for p in parts]),
            np.concatenate([p.keypoints for p in parts]) if has_kp else None,
        )

    def to_records(self, labels: list[str] | None = None, ndigits: int = 2) -> list[dict]:
        """JSON-ready records: the shape `detect --json` promises."""
        out = []
        for box, s, c in zip(self.xyxy.tolist(), self.score.tolist(), self.class_id.tolist()):
            out.append(
                {
                    "label": label_for(labels, c),
                    "class_id": int(c),
                    "score": round(float(s), 4),
                    "xyxy": [round(v, ndigits) for v in box],
                }
            )
        return out


def label_for(labels: list[str] | None, class_id: int) -> str:
    if labels and 0 <= class_id < len(labels):
        return labels[class_id]
    return str(class_id)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (N, 4) and (M, 4) xyxy boxes -> (N, M). The one IoU used everywhere."""
    a = np.asarray(a, np.float32).reshape(-1, 4)
    b = np.asarray(b, np.float32).reshape(-1, 4)
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0).astype(np.float32)
