"""The YOLO decoder on hand-built heads: v5 [1, N, 5+C] and v8 [1, 4+C, N], float and quantized."""

import numpy as np
import pytest

from runtime.decoders import DecoderContext, DecoderError, create_decoder
from runtime.interpreter import TensorInfo
from runtime.preprocess import Quantization

pytestmark = pytest.mark.board  # runs on the emulated arm64 root too (deploy/arm64/check.py)


def ctx(shape, dtype=np.float32, quant=None):
    return DecoderContext([TensorInfo("head", 0, shape, np.dtype(dtype), quant)], (640, 640), None, "test.json")


def padded(rows, n=32):
    """Real heads have thousands of candidates; pad with empty ones so N > 4+C as in a real head."""
    a = np.zeros((n, len(rows[0])), np.float32)
    a[: len(rows)] = rows
    return a


def v8_head(rows):
    """rows: (cx, cy, w, h, class scores...) per candidate -> [1, 4+C, N]."""
    return padded(rows).T[None]


ROWS = [
    # cx, cy, w, h (pixels of a 640 input), class 0, class 1
    (320, 320, 100, 200, 0.9, 0.1),
    (325, 322, 100, 200, 0.8, 0.05),  # overlaps the first, same class: suppressed
    (330, 320, 100, 200, 0.1, 0.7),  # same place, other class: kept
    (100, 100, 20, 20, 0.2, 0.1),  # below threshold
]


def test_v8_float():
    head = v8_head(ROWS)
    dec = create_decoder("yolo", {"score_threshold": 0.25}, ctx(head.shape))
    det = dec.decode([head])
    assert dec.layout == "v8"
    np.testing.assert_allclose(det.score, [0.9, 0.7], rtol=1e-6)
    assert det.class_id.tolist() == [0, 1]
    np.testing.assert_allclose(det.xyxy[0], np.array([270, 220, 370, 420]) / 640, rtol=1e-6)


def test_v5_float_multiplies_objectness():
    head = padded([[r[0], r[1], r[2], r[3], 0.5, r[4], r[5]] for r in ROWS])[None] / np.array([640, 640, 640, 640, 1, 1, 1], np.float32)
    dec = create_decoder("yolo", {"score_threshold": 0.25}, ctx(head.shape))
    det = dec.decode([head])
    assert dec.layout == "v5"
    # 0.5 * 0.9, 0.5 * 0.7 (and 0.5 * 0.8 suppressed); normalised coordinates detected by range
    np.testing.assert_allclose(det.score, [0.45, 0.35], rtol=1e-6)
    np.testing.assert_allclose(det.xyxy[0], np.array([270, 220, 370, 420]) / 640, rtol=1e-5)


def test_v8_int8_matches_float():
    head = v8_head(ROWS)
    q = Quantization(scale=640 / 255, zero_point=-128)  # a typical full-range int8 head (values 0..640)
    qhead = np.clip(np.round(head / q.scale + q.zero_point), -128, 127).astype(np.int8)
    det_q = create_decoder("yolo", {"score_threshold": 0.25}, ctx(head.shape, np.int8, q)).decode([qhead])
    # class scores 0..1 in a 0..640 scale vanish: such a head must keep scores in their own range,
    # so with this quantization nothing passes; with a 0..1 scale on scores it would. Both decoders agree:
    ref = create_decoder("yolo", {"score_threshold": 0.25}, ctx(head.shape)).decode([(qhead.astype(np.float32) - q.zero_point) * q.scale])
    np.testing.assert_allclose(det_q.xyxy, ref.xyxy, rtol=1e-6)
    np.testing.assert_allclose(det_q.score, ref.score, rtol=1e-6)


def test_v8_uint8_scores_thresholded_on_integers():
    head = v8_head(ROWS) / np.array([640, 640, 640, 640, 1, 1], np.float32)[:, None]
    q = Quantization(scale=1 / 255, zero_point=0)
    qhead = np.clip(np.round(head / q.scale), 0, 255).astype(np.uint8)
    det = create_decoder("yolo", {"score_threshold": 0.25}, ctx(head.shape, np.uint8, q)).decode([qhead])
    assert det.class_id.tolist() == [0, 1]
    np.testing.assert_allclose(det.score, [qhead[0, 4, 0] / 255, qhead[0, 5, 2] / 255], rtol=1e-5)  # the stored integers, dequantized
    np.testing.assert_allclose(det.xyxy[0], np.array([270, 220, 370, 420]) / 640, atol=1 / 255)


def test_not_a_yolo_head():
    with pytest.raises(DecoderError, match="not a recognisable YOLO head"):
        create_decoder("yolo", {}, ctx((1, 4, 4)))


def test_head_cut_in_two_decodes_as_the_whole_head():
    """boxes [1, 4, N] and scores [1, C, N], each with its own quantization (what convert ships for int8)."""
    head = v8_head(ROWS)
    qb, qs = Quantization(660 / 255, 0), Quantization(1 / 255, 0)
    boxes = np.clip(np.round(head[:, :4] / qb.scale), 0, 255).astype(np.uint8)
    scores = np.clip(np.round(head[:, 4:] / qs.scale), 0, 255).astype(np.uint8)
    c = DecoderContext([TensorInfo("boxes", 0, boxes.shape, np.dtype(np.uint8), qb), TensorInfo("scores", 1, scores.shape, np.dtype(np.uint8), qs)],
                       (640, 640), None, "test.json")
    dec = create_decoder("yolo", {"boxes": "boxes", "scores": "scores", "coordinates": "pixels"}, c)
    det = dec.decode([boxes, scores])
    whole = create_decoder("yolo", {}, ctx(head.shape)).decode([head])
    assert dec.warnings() == [] and det.class_id.tolist() == whole.class_id.tolist() == [0, 1]
    np.testing.assert_allclose(det.score, whole.score, atol=1 / 255)
    np.testing.assert_allclose(det.xyxy, whole.xyxy, atol=qb.scale / 640)


def test_end2end_head_needs_no_nms():
    rows = np.zeros((1, 300, 6), np.float32)
    rows[0, 0] = (10, 20, 110, 220, 0.9, 1)
    rows[0, 1] = (12, 22, 112, 222, 0.8, 1)  # overlapping, same class: the model kept both, so do we
    rows[0, 2] = (0, 0, 5, 5, 0.1, 0)
    det = create_decoder("yolo", {}, ctx(rows.shape)).decode([rows])
    assert det.class_id.tolist() == [1, 1]
    np.testing.assert_allclose(det.xyxy[0], np.array([10, 20, 110, 220]) / 640, rtol=1e-6)


def test_ultralytics_defaults_and_collapsed_scores_warn():
    head = v8_head(ROWS)
    q = Quantization(scale=660 / 255, zero_point=0)  # boxes in pixels and scores sharing one uint8 scale
    dec = create_decoder("yolo", {}, ctx(head.shape, np.uint8, q))
    assert dec.nms.iou == 0.7 and dec.threshold == 0.25
    assert len(dec.warnings()) == 1 and "collapsed" in dec.warnings()[0]
    # a float output dequantized from such a tensor is no better
    upstream = TensorInfo("head", 0, head.shape, np.dtype(np.float32), None, upstream_quantization=q)
    assert create_decoder("yolo", {}, DecoderContext([upstream], (640, 640), None, "t")).warnings()
