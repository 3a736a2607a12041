"""The gate's policy and the region planner, on frame times and boxes: pure logic, no model."""

from __future__ import annotations

import numpy as np
import pytest

from runtime.detections import Detections
from runtime.motion import Gate, GateStats, Motion
from runtime.motion.regions import merge, plan_regions

pytestmark = pytest.mark.board  # runs on the emulated arm64 root too (deploy/arm64/check.py)

FPS = 10.0
STILL = Motion(np.zeros((0, 4), np.float32), 0.0, "watching")
MOVING = Motion(np.array([[10, 10, 50, 90]], np.float32), 0.01, "watching")
LEARNING = Motion(np.zeros((0, 4), np.float32), 0.0, "learning")


def _sent(gate: Gate, seconds: float, motion: Motion, tracks: int = 0, t0: float = 0.0) -> list[tuple[float, str]]:
    out = []
    for i in range(int(seconds * FPS)):
        t = t0 + i / FPS
        d = gate.decide(t, motion, tracks)
        if d.infer:
            out.append((round(t, 2), d.reason))
    return out


def test_nothing_moving_sends_one_frame_per_keepalive():
    gate = Gate(keepalive_s=5.0, track_refresh_s=0.5)
    sent = _sent(gate, 30, STILL)
    assert [t for t, _ in sent] == [0.0, 5.0, 10.0, 15.0, 20.0, 25.0]
    assert {r for _, r in sent} == {"keepalive"}


def test_motion_sends_every_frame_and_tracks_every_refresh():
    gate = Gate(keepalive_s=5.0, track_refresh_s=0.5)
    assert len(_sent(gate, 3, MOVING)) == 30
    # motion stopped, a track still alive (a person standing, or one who left): twice a second
    sent = _sent(gate, 3, STILL, tracks=1, t0=3.0)
    assert [t for t, _ in sent] == [3.4, 3.9, 4.4, 4.9, 5.4, 5.9]  # 0.5 s after the last motion frame (2.9)
    assert {r for _, r in sent} == {"tracks"}
    # the track gone: back to the keep-alive, counted from the last frame sent
    assert [t for t, _ in _sent(gate, 12, STILL, t0=6.0)] == [10.9, 15.9]


def test_a_learning_model_cannot_tell_motion_so_frames_go_at_the_refresh_rate():
    gate = Gate(keepalive_s=5.0, track_refresh_s=0.5)
    sent = _sent(gate, 2, LEARNING)
    assert [t for t, _ in sent] == [0.0, 0.5, 1.0, 1.5] and {r for _, r in sent} == {"settling"}


def test_motion_off_sends_everything_and_forget_sends_the_next_frame():
    gate = Gate(keepalive_s=5.0, track_refresh_s=0.5)
    assert [gate.decide(i / FPS, None, 0).reason for i in range(3)] == ["ungated"] * 3
    gate.decide(10.0, STILL, 0)
    assert not gate.decide(10.1, STILL, 0).infer
    gate.forget()
    assert gate.decide(10.2, STILL, 0).infer


def test_stats_report_motion_share_and_duty_over_the_window():
    gate, stats = Gate(5.0, 0.5), GateStats(window_s=60.0)
    assert stats.shares() == (None, None)  # before any frame
    for i in range(1200):  # 60 s still, then 60 s with motion in every other frame
        t = i / FPS
        motion = MOVING if i >= 600 and i % 2 else STILL
        stats.record(t, motion, gate.decide(t, motion, 0))
    motion_share, duty = stats.shares()  # the last 60 s of capture time
    assert motion_share == pytest.approx(0.5)
    assert 0.5 <= duty < 0.52  # the moving frames, and a keep-alive or so between them
    health = stats.health()
    assert health.frames == 1200 and health.moving == 300 and health.active == pytest.approx(0.5, abs=0.02)
    assert health.sent_by_reason["motion"] == 300 and health.sent_by_reason["keepalive"] >= 12


FRAME, MODEL = (1536, 1152), (300, 300)


def test_a_small_group_of_boxes_gets_one_crop_at_the_model_size():
    boxes = np.array([[1000, 600, 1030, 680], [1060, 620, 1090, 700]], np.float32)
    crops = plan_regions(boxes, FRAME, MODEL)
    assert crops is not None and len(crops) == 1
    x1, y1, x2, y2 = crops[0]
    assert (x2 - x1, y2 - y1) == MODEL
    assert x1 <= 1000 - 20 and x2 >= 1090 + 20 and y1 <= 600 and y2 >= 700  # with a margin around them


def test_a_crop_is_moved_inside_the_frame_and_far_groups_get_their_own():
    boxes = np.array([[0, 0, 20, 40], [1500, 1100, 1536, 1152]], np.float32)
    crops = plan_regions(boxes, FRAME, MODEL)
    assert sorted(crops) == [(0, 0, 300, 300), (1236, 852, 1536, 1152)]


def test_spread_or_large_motion_runs_the_whole_frame():
    assert plan_regions(np.zeros((0, 4)), FRAME, MODEL) is None
    assert plan_regions(np.array([[0, 0, 1200, 1000]], np.float32), FRAME, MODEL) is None  # most of the frame
    spread = np.array([[x, 500, x + 20, 560] for x in range(0, 1500, 300)], np.float32)
    assert plan_regions(spread, FRAME, MODEL, max_regions=4) is None  # five groups
    assert len(plan_regions(spread[:3], FRAME, MODEL, max_regions=4)) == 3


def test_merge_drops_boxes_cut_by_a_crop_edge_and_duplicates():
    a = (0, 0, 300, 300)
    b = (250, 0, 550, 300)
    person = [260, 100, 290, 200]  # whole in both crops
    cut = [285, 120, 300, 210]  # touches a's right edge, which is inside the frame: a piece of a person
    whole_of_cut = [285, 120, 330, 210]  # what b saw of the same person
    da = Detections(np.array([person, cut], np.float32), [0.9, 0.6], [0, 0])
    db = Detections(np.array([[261, 101, 291, 201], whole_of_cut], np.float32), [0.8, 0.7], [0, 0])
    merged = merge([(a, da), (b, db)], FRAME)
    assert len(merged) == 2
    assert sorted(merged.score.tolist()) == pytest.approx([0.7, 0.9])
