"""Fidelity of a converted variant to its source model, on held-out samples.

Detectors: mAP@0.5 of the variant's detections, taking the source model's own confident detections
(score >= REFERENCE_SCORE, the source run whole with its own preprocessing) as ground truth. The
variant's detections are ranked down to PREDICTION_SCORE, so a box whose score merely crosses the
display threshold is ranked lower, not lost: AP measures agreement, not the threshold's luck.
Other models: cosine similarity and SNR (dB) of the outputs against the source's, all outputs of a
sample flattened into one vector.
"""

from __future__ import annotations

import math

import numpy as np

from runtime.detections import Detections, box_iou

REFERENCE_SCORE = 0.5
PREDICTION_SCORE = 0.05
IOU = 0.5


def _average_precision(matches: list[tuple[float, bool]], n_ref: int) -> float:
    """VOC all-point AP from (score, is_true_positive) pairs and the number of references."""
    if not matches:
        return 0.0
    matches.sort(key=lambda m: -m[0])
    tp = np.cumsum([m[1] for m in matches], dtype=np.float64)
    fp = np.cumsum([not m[1] for m in matches], dtype=np.float64)
    recall = np.concatenate([[0.0], tp / n_ref, [tp[-1] / n_ref]])
    precision = np.concatenate([[1.0], tp / np.maximum(tp + fp, 1e-12), [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # the envelope: best precision at >= recall
    return float(np.sum((recall[1:] - recall[:-1]) * precision[1:]))


def map50(predictions: list[Detections], references: list[Detections], iou: float = IOU, reference_score: float = REFERENCE_SCORE) -> dict:
    """{"value": mAP or None when the references hold no box, "per_class": {id: AP}, "references": n}."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} prediction frames for {len(references)} reference frames")
    refs = [r[r.score >= reference_score] for r in references]
    preds = [p[p.score >= PREDICTION_SCORE] for p in predictions]
    classes = sorted({int(c) for r in refs for c in r.class_id})
    per_class = {}
    for c in classes:
        matches: list[tuple[float, bool]] = []
        n_ref = 0
        for p, r in zip(preds, refs):
            pc, rc = p[p.class_id == c].sorted_by_score(), r[r.class_id == c]
            n_ref += len(rc)
            taken = np.zeros(len(rc), bool)
            overlaps = box_iou(pc.xyxy, rc.xyxy)
            for i in range(len(pc)):
                hit = False
                if len(rc):  # the best still unmatched reference box (COCO-style matching)
                    row = np.where(taken, -1.0, overlaps[i])
                    j = int(np.argmax(row))
                    hit = bool(row[j] >= iou)
                    taken[j] |= hit
                matches.append((float(pc.score[i]), hit))
        per_class[c] = _average_precision(matches, n_ref)
    value = float(np.mean(list(per_class.values()))) if per_class else None
    return {
        "metric": "map50",
        "value": None if value is None else round(value, 4),
        "per_class": {str(c): round(v, 4) for c, v in per_class.items()},
        "references": int(sum(len(r) for r in refs)),
        "frames": len(refs),
        "reference_score": reference_score,
        "prediction_score": PREDICTION_SCORE,
        "iou": iou,
    }


def similarity(outputs: list[list[np.ndarray]], references: list[list[np.ndarray]]) -> dict:
    """Cosine similarity (mean over samples, and the worst) and SNR in dB over all samples."""
    cosines, signal, noise = [], 0.0, 0.0
    for out, ref in zip(outputs, references):
        a = np.concatenate([np.asarray(x, np.float64).reshape(-1) for x in out])
        b = np.concatenate([np.asarray(x, np.float64).reshape(-1) for x in ref])
        if a.shape != b.shape:
            raise ValueError(f"output sizes differ: {a.size} vs {b.size}")
        denom = np.linalg.norm(a) * np.linalg.norm(b)
        cosines.append(1.0 if denom == 0 and not a.any() and not b.any() else float(a @ b / denom) if denom else 0.0)
        signal += float(b @ b)
        noise += float((a - b) @ (a - b))
    snr = math.inf if noise == 0 else 10 * math.log10(signal / noise) if signal else -math.inf
    return {
        "metric": "cosine",
        "value": round(float(np.mean(cosines)), 6),
        "cosine_min": round(float(np.min(cosines)), 6),
        "snr_db": round(snr, 2) if math.isfinite(snr) else None,
        "samples": len(cosines),
    }
