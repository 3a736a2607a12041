"""The motion detector on real footage: vtest.avi, and its empty street (the per-pixel median of the
clip) with sensor noise and changing light. Frames are replayed at their own capture times (10 fps),
so nothing here depends on the machine's speed."""

from __future__ import annotations

import math
from dataclasses import replace

import cv2
import numpy as np
import pytest

from runtime.bench.footage import EmptyScene, read_frames, slow_light, step_light
from runtime.motion import MotionDetector, MotionMask
from runtime.config import MotionConfig

FPS = 10.0


def _run(detector: MotionDetector, frames, t0: float = 0.0):
    """(frame index, Motion) for each frame, captured at t0 + i / FPS."""
    return [detector.detect(f, t0 + i / FPS) for i, f in enumerate(frames)]


@pytest.fixture(scope="module")
def walkers(vtest_avi):
    """40 frames of vtest.avi from frame 100: several people walking."""
    return read_frames(vtest_avi, start=100, limit=40)


def test_noisy_empty_scene_with_slow_light_shows_no_motion(vtest_background):
    # 40 s of the empty street, sensor noise sigma 5, the light swinging +-15 % over 40 s
    scene = EmptyScene(vtest_background, light=slow_light(0.15, 40.0), noise_sigma=5.0, seed=1)
    detector = MotionDetector(MotionConfig())
    seen = [detector.detect(scene.frame(i / FPS), i / FPS) for i in range(0, 400)]
    moving = [i for i, m in enumerate(seen) if m.moving]
    assert not moving, f"motion in the empty scene at frames {moving[:10]}"
    assert seen[-1].state == "watching"
    assert max(m.gain for m in seen) > 1.03 and min(m.gain for m in seen) < 0.97  # the light changed faster than the background learns


@pytest.mark.board  # the detector's numbers on arm64's OpenCV; the long scenes run on x86 only
def test_walkers_are_motion_from_their_first_frame(vtest_background, walkers):
    scene = EmptyScene(vtest_background, light=lambda t: 1.0, seed=2)
    detector = MotionDetector(MotionConfig())
    _run(detector, [scene.frame(i / FPS) for i in range(30)])
    seen = _run(detector, walkers, t0=3.0)
    assert all(m.moving for m in seen)
    # every person the ground truth of the clip shows is inside some motion box: check the
    # people that differ most from the background at the first frame, found independently
    diff = cv2.absdiff(cv2.cvtColor(walkers[0], cv2.COLOR_BGR2GRAY), cv2.cvtColor(vtest_background, cv2.COLOR_BGR2GRAY))
    n, _, stats, centroids = cv2.connectedComponentsWithStats((diff > 60).astype(np.uint8))
    people = [tuple(c) for c, s in zip(centroids[1:], stats[1:]) if s[cv2.CC_STAT_AREA] > 150]
    assert len(people) >= 3
    boxes = seen[0].boxes
    for x, y in people:
        assert ((boxes[:, 0] <= x) & (x <= boxes[:, 2]) & (boxes[:, 1] <= y) & (y <= boxes[:, 3])).any(), (x, y, boxes)
    # and motion is not the whole frame: a few boxes, well under half of it
    area = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).sum()
    assert area < 0.3 * walkers[0].shape[0] * walkers[0].shape[1]


@pytest.mark.parametrize("factor", [1.4, 1 / 1.4])
def test_a_light_step_fires_for_at_most_a_few_frames(vtest_background, factor):
    # lights on (+40 %) or off, clipped like a sensor, 5 s into a noisy empty scene
    scene = EmptyScene(vtest_background, light=step_light(lambda t: 1.0, 5.0, factor), seed=3)
    detector = MotionDetector(MotionConfig())
    seen = [detector.detect(scene.frame(i / FPS), i / FPS) for i in range(150)]
    moving = [i / FPS for i, m in enumerate(seen) if m.moving]
    assert len(moving) <= 3 and all(5.0 <= t < 8.0 for t in moving), moving
    assert seen[-1].state == "watching"


@pytest.mark.board  # the detector's numbers on arm64's OpenCV; the long scenes run on x86 only
def test_a_change_the_gain_cannot_explain_is_relearned_not_reported(vtest_background, walkers):
    # lights that change the scene unevenly (a gamma change: dark parts brighten more than
    # bright ones): most pixels change at once, the model starts again and reports nothing
    # for settle_s, then watches again and sees walkers on the new scene
    config = MotionConfig()
    scene = EmptyScene(vtest_background, light=lambda t: 1.0, seed=4)
    lut = np.clip(255 * (np.arange(256) / 255) ** 0.5, 0, 255).astype(np.uint8)
    detector = MotionDetector(config)
    _run(detector, [scene.frame(i / FPS) for i in range(30)])
    after = [cv2.LUT(scene.frame(3 + i / FPS), lut) for i in range(40)]
    seen = _run(detector, after, t0=3.0)
    assert detector.model.relearned == 1
    assert not any(m.moving for m in seen)
    assert seen[0].state == "relearning" and seen[-1].state == "watching"
    walking = _run(detector, [cv2.LUT(f, lut) for f in walkers[:5]], t0=7.0)
    assert all(m.moving for m in walking)


def test_something_that_stops_becomes_background(vtest_background, walkers):
    # a person pasted still into the scene: motion at first, none once absorb_s has passed
    config = replace(MotionConfig(), absorb_s=4.0)
    scene = EmptyScene(vtest_background, light=lambda t: 1.0, seed=5)
    detector = MotionDetector(config)
    _run(detector, [scene.frame(i / FPS) for i in range(20)])
    patch = (slice(140, 235), slice(490, 540))  # a walker in frame 100 of vtest.avi (the model finds him at 497,150-531,225)
    frames = []
    for i in range(80):
        f = scene.frame(2 + i / FPS)
        f[patch] = walkers[0][patch]
        frames.append(f)
    seen = _run(detector, frames, t0=2.0)
    assert seen[0].moving
    still = [i for i, m in enumerate(seen) if m.moving]
    assert still[-1] / FPS <= config.absorb_s + 1.0, still


def _left_half_walkers(background: np.ndarray, walkers: list[np.ndarray], scene: EmptyScene) -> list[np.ndarray]:
    out = []
    for i, f in enumerate(walkers):
        frame = scene.frame(3 + i / FPS)
        frame[:, : f.shape[1] // 2] = f[:, : f.shape[1] // 2]
        out.append(frame)
    return out


@pytest.mark.parametrize("kind", ["image", "polygons"])
def test_motion_in_the_masked_region_is_ignored(vtest_background, walkers, kind, tmp_path):
    h, w = vtest_background.shape[:2]
    if kind == "image":
        image = np.full((h // 4, w // 4), 255, np.uint8)
        image[:, : w // 8] = 0  # ignore the left half, at a quarter of the camera's size
        mask = MotionMask(image=image)
    else:
        mask = MotionMask(polygons=[np.array([[0, 0], [0.5, 0], [0.5, 1], [0, 1]], np.float32)])
    for masked in (False, True):
        scene = EmptyScene(vtest_background, light=lambda t: 1.0, seed=6)
        detector = MotionDetector(MotionConfig(), mask=mask if masked else None)
        _run(detector, [scene.frame(i / FPS) for i in range(30)])
        seen = _run(detector, _left_half_walkers(vtest_background, walkers[:15], scene), t0=3.0)
        if masked:
            assert not any(m.moving for m in seen), [m.boxes for m in seen if m.moving][:2]
        else:
            assert all(m.moving for m in seen)
            assert all((m.boxes[:, 0] < w / 2).all() for m in seen)


@pytest.mark.board  # the detector's numbers on arm64's OpenCV; the long scenes run on x86 only
def test_a_new_frame_size_starts_a_new_model(vtest_background):
    detector = MotionDetector(MotionConfig())
    scene = EmptyScene(vtest_background, light=lambda t: 1.0, seed=7)
    _run(detector, [scene.frame(i / FPS) for i in range(20)])
    small = cv2.resize(scene.frame(2.0), (384, 288))
    m = detector.detect(small, 2.0)
    assert m.state == "learning" and not m.moving
    assert detector.downscale.source_size == (384, 288)
    assert math.isclose(detector.downscale.size[1], MotionConfig().frame_height)
