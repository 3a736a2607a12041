"""mAP@0.5, cosine and SNR of the converter's report, against hand-computed cases."""

import math

import numpy as np
import pytest

from converters.fidelity import map50, similarity
from runtime.detections import Detections


def det(boxes, scores, classes=None):
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    return Detections(boxes, scores, classes if classes is not None else np.zeros(len(boxes), np.int32))


A, B, C = [0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]


def test_identical_detections_score_one():
    ref = [det([A, B], [0.9, 0.8]), det([C], [0.7])]
    assert map50(ref, ref)["value"] == 1.0


def test_a_missed_reference_halves_recall():
    ref = [det([A, B], [0.9, 0.8])]
    pred = [det([A], [0.9])]
    # recall reaches 0.5 at precision 1, never more
    assert map50(pred, ref)["value"] == pytest.approx(0.5)


def test_a_false_positive_ranked_first():
    ref = [det([A, B], [0.9, 0.8])]
    pred = [det([C, A, B], [0.95, 0.9, 0.8])]
    # ranks: FP, TP (P=1/2, R=1/2), TP (P=2/3, R=1): envelope 2/3 over the whole recall range
    assert map50(pred, ref)["value"] == pytest.approx(2 / 3, abs=1e-4)


def test_a_shifted_box_below_iou_half_is_a_miss():
    ref = [det([A], [0.9])]
    shifted = [det([[5, 0, 15, 10]], [0.9])]  # IoU 1/3
    assert map50(shifted, ref)["value"] == 0.0
    nudged = [det([[1, 0, 11, 10]], [0.9])]  # IoU 9/11
    assert map50(nudged, ref)["value"] == 1.0


def test_low_reference_scores_are_not_ground_truth_and_classes_do_not_mix():
    ref = [det([A, B], [0.9, 0.3], [0, 0])]  # B is below the reference score: not a target
    pred = [det([A, B], [0.9, 0.3], [1, 0])]  # A predicted with the wrong class
    out = map50(pred, ref)
    assert out["references"] == 1
    assert out["value"] == 0.0


def test_no_reference_boxes_means_no_value():
    assert map50([det([A], [0.9])], [Detections.empty()])["value"] is None


def test_similarity_cosine_and_snr():
    rng = np.random.default_rng(0)
    ref = [[rng.normal(size=(4, 8)).astype(np.float32), rng.normal(size=3).astype(np.float32)] for _ in range(5)]
    same = similarity(ref, ref)
    assert same["value"] == 1.0 and same["snr_db"] is None  # infinite SNR
    noisy = [[r * 1.0 + 0.1 * rng.normal(size=r.shape) for r in sample] for sample in ref]
    out = similarity(noisy, ref)
    signal = sum(float((r.astype(np.float64) ** 2).sum()) for s in ref for r in s)
    noise = sum(float(((n - r) ** 2).sum()) for sn, sr in zip(noisy, ref) for n, r in zip(sn, sr))
    assert out["snr_db"] == pytest.approx(10 * math.log10(signal / noise), abs=0.01)
    assert 0.98 < out["value"] < 1.0
    flipped = similarity([[-r for r in s] for s in ref], ref)
    assert flipped["value"] == pytest.approx(-1.0)
