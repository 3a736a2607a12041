"""Anchor generators and box coders against hand-computed values."""

import math

import numpy as np
import pytest

from runtime.decoders.anchors import corners_to_center, mediapipe_ssd, multiple_grid
from runtime.decoders.box_coders import decode_mediapipe, decode_ssd

pytestmark = pytest.mark.board  # runs on the emulated arm64 root too (deploy/arm64/check.py)


def test_blazeface_short_range_anchors():
    a = mediapipe_ssd(128, 128, [8, 16, 16, 16])
    assert a.shape == (896, 4)  # 16*16*2 + 8*8*6
    # first cell of the 16x16 grid: centre (0.5/16, 0.5/16), two anchors; fixed size 1x1
    np.testing.assert_allclose(a[0], [0.5 / 16, 0.5 / 16, 1, 1])
    np.testing.assert_allclose(a[1], a[0])
    np.testing.assert_allclose(a[2], [0.5 / 16, 1.5 / 16, 1, 1])
    # the 8x8 layers: 6 anchors per cell, starting after 512
    np.testing.assert_allclose(a[512], [0.5 / 8, 0.5 / 8, 1, 1])
    np.testing.assert_allclose(a[512 + 6], [0.5 / 8, 1.5 / 8, 1, 1])


def test_mediapipe_anchor_sizes_when_not_fixed():
    a = mediapipe_ssd(128, 128, [8, 16], min_scale=0.2, max_scale=0.6, fixed_anchor_size=False)
    # layer 0 (scale 0.2): aspect 1 -> 0.2 x 0.2; interpolated sqrt(0.2 * 0.6)
    np.testing.assert_allclose(a[0, 2:], [0.2, 0.2], rtol=1e-6)
    s = math.sqrt(0.2 * 0.6)
    np.testing.assert_allclose(a[1, 2:], [s, s], rtol=1e-6)


def test_tf_od_api_ssd_anchors_for_300():
    maps = [(19, 19), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)]
    a = multiple_grid(maps)
    assert a.shape == (1917, 4)  # 19*19*3 + (100 + 25 + 9 + 4 + 1) * 6
    # lowest layer: (0.1, 1), (0.2, 2), (0.2, 0.5) at the first cell
    c = 0.5 / 19
    np.testing.assert_allclose(a[0], [c, c, 0.1, 0.1], rtol=1e-6)
    np.testing.assert_allclose(a[1], [c, c, 0.2 / math.sqrt(2), 0.2 * math.sqrt(2)], rtol=1e-6)
    np.testing.assert_allclose(a[2], [c, c, 0.2 * math.sqrt(2), 0.2 / math.sqrt(2)], rtol=1e-6)
    # second layer scale = 0.2 + 0.75 / 5 = 0.35; its last spec is the interpolated sqrt(0.35 * 0.5)
    s = math.sqrt(0.35 * 0.5)
    np.testing.assert_allclose(a[19 * 19 * 3 + 5], [0.05, 0.05, s, s], rtol=1e-6)


def test_corners_to_center():
    np.testing.assert_allclose(corners_to_center([[0.1, 0.2, 0.5, 0.6]]), [[0.3, 0.4, 0.4, 0.4]], rtol=1e-6)


def test_ssd_coder_hand_computed():
    anchors = np.array([[0.5, 0.5, 0.2, 0.4]], np.float32)  # cy, cx, h, w
    raw = np.array([[1.0, -2.0, 5 * math.log(2), 0.0]], np.float32)  # ty, tx, th, tw
    # cy = 1/10*0.2 + 0.5 = 0.52; cx = -2/10*0.4 + 0.5 = 0.42; h = 2*0.2 = 0.4; w = 0.4
    np.testing.assert_allclose(decode_ssd(raw, anchors, (10, 10, 5, 5)), [[0.22, 0.32, 0.62, 0.72]], atol=1e-6)


def test_mediapipe_coder_hand_computed():
    anchors = np.array([[0.25, 0.75, 1.0, 1.0]], np.float32)
    raw = np.array([[12.8, -6.4, 25.6, 12.8, 0.0, 12.8]], np.float32)
    boxes, kp = decode_mediapipe(raw, anchors, (128, 128, 128, 128), num_keypoints=1)
    # cx = 0.1 + 0.75 = 0.85; cy = -0.05 + 0.25 = 0.2; w = 0.2; h = 0.1
    np.testing.assert_allclose(boxes, [[0.75, 0.15, 0.95, 0.25]], atol=1e-6)
    np.testing.assert_allclose(kp, [[[0.75, 0.35]]], atol=1e-6)
