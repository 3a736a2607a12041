"""The IoU tracker: event lifecycles from per-frame detections."""

import itertools

import numpy as np
import pytest

from runtime.detections import Detections
from runtime.tracker import IoUTracker


def det(*rows):
    """rows of (x1, y1, x2, y2, score, class_id)."""
    a = np.array(rows, np.float32).reshape(-1, 6)
    return Detections(a[:, :4], a[:, 4], a[:, 5].astype(np.int32))


def tracker(**kw):
    ids = itertools.count(1)
    return IoUTracker(id_factory=lambda wall: f"e{next(ids)}", **{"iou": 0.3, "min_hits": 2, "max_missed_s": 1.0, **kw})


def kinds(updates):
    return [(u.kind, u.track.id) for u in updates]


def test_one_frame_flicker_makes_no_event():
    t = tracker()
    assert t.update(det((0, 0, 10, 10, 0.9, 0)), 0.0, 100.0) == []
    assert t.update(det(), 5.0, 105.0) == []  # expired unseen, never started: no "end" either
    assert t.tracks == []


def test_start_update_end_with_best_score_and_times():
    t = tracker()
    t.update(det((0, 0, 10, 10, 0.6, 0)), 0.0, 100.0)
    assert kinds(t.update(det((1, 0, 11, 10, 0.7, 0)), 0.1, 100.1)) == [("start", "e1")]
    assert kinds(t.update(det((2, 0, 12, 10, 0.65, 0)), 0.2, 100.2)) == []  # not better: no update
    assert kinds(t.update(det((3, 0, 13, 10, 0.95, 0)), 0.3, 100.3)) == [("update", "e1")]
    track = t.tracks[0]
    assert track.best_score == pytest.approx(0.95)
    assert track.best_box.tolist() == [3, 0, 13, 10]
    assert t.update(det(), 1.0, 101.0) == []  # 0.7 s unseen < 1.0 s
    ended = t.update(det(), 1.5, 101.5)
    assert kinds(ended) == [("end", "e1")]
    assert (ended[0].track.first_seen, ended[0].track.last_seen) == (100.0, 100.3)


def test_classes_never_match_each_other():
    t = tracker(min_hits=1)
    started = t.update(det((0, 0, 10, 10, 0.9, 0), (0, 0, 10, 10, 0.9, 1)), 0.0, 0.0)
    assert sorted(u.track.class_id for u in started) == [0, 1]
    # Same boxes, classes swapped order: each still matches its own class, no new events.
    assert t.update(det((0, 0, 10, 10, 0.8, 1), (0, 0, 10, 10, 0.8, 0)), 0.1, 0.1) == []
    assert len(t.tracks) == 2


def test_greedy_matching_prefers_highest_iou_and_splits_crossing_objects():
    t = tracker(min_hits=1)
    t.update(det((0, 0, 10, 10, 0.9, 0), (20, 0, 30, 10, 0.9, 0)), 0.0, 0.0)
    a, b = (tr.id for tr in t.tracks)
    # Both move right by 4 px; the second detection overlaps the first track a little too.
    assert t.update(det((24, 0, 34, 10, 0.9, 0), (4, 0, 14, 10, 0.9, 0)), 0.1, 0.1) == []
    boxes = {tr.id: tr.box.tolist() for tr in t.tracks}
    assert boxes == {a: [4, 0, 14, 10], b: [24, 0, 34, 10]}


def test_far_jump_is_a_new_object():
    t = tracker(min_hits=1)
    t.update(det((0, 0, 10, 10, 0.9, 0)), 0.0, 0.0)
    assert [u.kind for u in t.update(det((50, 50, 60, 60, 0.9, 0)), 0.1, 0.1)] == ["start"]
    assert len(t.tracks) == 2


def test_close_all_ends_only_started_events():
    t = tracker(min_hits=2)
    t.update(det((0, 0, 10, 10, 0.9, 0), (50, 50, 60, 60, 0.9, 0)), 0.0, 0.0)
    t.update(det((0, 0, 10, 10, 0.9, 0)), 0.1, 0.1)
    assert [u.kind for u in t.close_all()] == ["end"]
    assert t.tracks == [] and t.open_events == 0
