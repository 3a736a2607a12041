"""NMS: hand-computed cases and properties that must hold for any input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.decoders.nms import greedy_nms, weighted_nms
from runtime.detections import Detections, box_iou

pytestmark = pytest.mark.board  # runs on the emulated arm64 root too (deploy/arm64/check.py)


def det(boxes, scores, classes=None, kp=None):
    classes = [0] * len(scores) if classes is None else classes
    return Detections(np.array(boxes, np.float32), np.array(scores, np.float32), np.array(classes), kp)


def test_iou_hand_computed():
    a = [[0, 0, 10, 10]]
    b = [[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]]
    # overlap 5x10 = 50; union 100 + 100 - 50 = 150
    np.testing.assert_allclose(box_iou(a, b), [[50 / 150, 0.0, 1.0]], rtol=1e-6)


def test_greedy_keeps_best_and_drops_overlaps_above_threshold():
    d = det([[0, 0, 10, 10], [1, 0, 11, 10], [5, 0, 15, 10], [50, 50, 60, 60]], [0.6, 0.9, 0.8, 0.5])
    # 0.9 box [1,0,11,10] vs [0,0,10,10]: IoU 90/110 = 0.818 -> dropped; vs [5,0,15,10]: 60/140 = 0.43 -> kept at 0.5
    kept = greedy_nms(d, 0.5)
    np.testing.assert_allclose(kept.score, [0.9, 0.8, 0.5])
    kept = greedy_nms(d, 0.4)
    np.testing.assert_allclose(kept.score, [0.9, 0.5])


def test_greedy_is_per_class():
    d = det([[0, 0, 10, 10], [0, 0, 10, 10]], [0.9, 0.8], [0, 1])
    assert len(greedy_nms(d, 0.5)) == 2
    assert len(greedy_nms(d, 0.5, per_class=False)) == 1


def test_greedy_max_detections():
    boxes = [[i * 20, 0, i * 20 + 10, 10] for i in range(10)]
    kept = greedy_nms(det(boxes, np.linspace(0.9, 0.5, 10)), 0.5, max_detections=3)
    np.testing.assert_allclose(kept.score, [0.9, np.linspace(0.9, 0.5, 10)[1], np.linspace(0.9, 0.5, 10)[2]], rtol=1e-6)


def test_weighted_averages_the_cluster_by_score():
    kp = np.array([[[0, 0]], [[4, 4]], [[100, 100]]], np.float32)
    d = det([[0, 0, 10, 10], [2, 0, 12, 10], [50, 50, 60, 60]], [0.75, 0.25, 0.5], kp=kp)
    out = weighted_nms(d, 0.3)
    # cluster {0.75 box, 0.25 box}: x1 = (0*0.75 + 2*0.25) / 1.0 = 0.5
    np.testing.assert_allclose(out.xyxy[0], [0.5, 0, 10.5, 10], atol=1e-6)
    np.testing.assert_allclose(out.keypoints[0, 0], [1, 1], atol=1e-6)
    assert out.score.tolist() == [0.75, 0.5]


boxes_strategy = st.lists(
    st.tuples(
        # no subnormals: tflite-runtime turns on flush-to-zero for the whole process
        st.floats(0, 100, allow_subnormal=False), st.floats(0, 100, allow_subnormal=False),
        st.floats(1, 50), st.floats(1, 50), st.floats(0.01, 1.0), st.integers(0, 2)
    ),
    min_size=0,
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(boxes_strategy, st.floats(0.1, 0.9, allow_subnormal=False))
def test_greedy_properties(rows, iou):
    if rows:
        a = np.array(rows, np.float64)
        d = det(np.stack([a[:, 0], a[:, 1], a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]], 1), a[:, 4], a[:, 5].astype(int))
    else:
        d = Detections.empty()
    kept = greedy_nms(d, iou, max_detections=1000)
    assert np.all(np.diff(kept.score) <= 0), "kept scores are sorted, best first"
    for c in np.unique(kept.class_id):
        same = kept[kept.class_id == c]
        m = box_iou(same.xyxy, same.xyxy)
        np.fill_diagonal(m, 0)
        assert m.max(initial=0) <= iou + 1e-6, "no two kept boxes of one class overlap above the threshold"
    # every dropped box is covered by a kept box of its class that scores at least as high
    for i in range(len(d)):
        if not any(np.array_equal(d.xyxy[i], k) and d.class_id[i] == c for k, c in zip(kept.xyxy, kept.class_id)):
            same = kept[(kept.class_id == d.class_id[i]) & (kept.score >= d.score[i])]
            assert box_iou(d.xyxy[i : i + 1], same.xyxy).max(initial=0) > iou - 1e-6


def test_weighted_survives_a_degenerate_box():
    # a zero-area box has IoU 0 even with itself: it must still form its own cluster, once
    d = det([[0.5, 0.5, 0.5, 0.6], [0.1, 0.1, 0.2, 0.2]], [0.9, 0.8])
    out = weighted_nms(d, 0.3)
    assert len(out) == 2 and out.score.tolist() == [np.float32(0.9), np.float32(0.8)]
