"""The tracker on real trajectories: TUD-Stadtmitte's annotated pedestrians (from the motmetrics
package), fed as a detector slower than the camera would see them (every 2nd frame, 12.5 fps)."""

import itertools

import numpy as np
import pytest

from runtime.bench.tracking.ground_truth import TUD_SIZE, GroundTruthMissing, SimulatedDetector, load_tud
from runtime.detections import Detections, box_iou
from runtime.tracking import Tracker, TrackerParams
from runtime.tracking.assignment import match
from runtime.tracking.trajectory import Trajectory

pytestmark = pytest.mark.board  # runs on the emulated arm64 root too (deploy/arm64/check.py)


@pytest.fixture(scope="module")
def tud():
    try:
        return load_tud()
    except GroundTruthMissing as exc:
        pytest.skip(str(exc))


def tracker(**kw):
    ids = itertools.count(1)
    return Tracker(TrackerParams(**kw), id_factory=lambda wall: f"e{next(ids)}")


def people(frames, wanted, step=2):
    """[(time, {person: box})] for the `wanted` people, every `step`-th frame, from the first frame
    one of them is in to the last."""
    out = []
    for f in frames[::step]:
        out.append((f.time, {int(p): b for p, b in zip(f.ids, f.xyxy) if int(p) in wanted}))
    seen = [i for i, (_, boxes) in enumerate(out) if boxes]
    return out[seen[0]:seen[-1] + 1]


def feed(t, seq, score=lambda person, i: 0.9):
    """Each frame's boxes as detections; returns {person: [the track each of its boxes went to]}
    and every update."""
    went, updates = {}, []
    for i, (time, boxes) in enumerate(seq):
        order = sorted(boxes)
        det = Detections(np.array([boxes[p] for p in order], np.float32).reshape(-1, 4),
                         np.array([score(p, i) for p in order], np.float32), np.zeros(len(order), np.int32))
        updates += t.update(det, time, 1000.0 + time, TUD_SIZE)
        for p in order:
            # The track that took this person's box: the one whose box is now exactly it.
            held = [tr.id for tr in t.tracks if tr.last_seen_mono == time and np.allclose(tr.box, boxes[p])]
            went.setdefault(p, []).append(held[0] if held else None)
    return went, updates


def kinds(updates, kind):
    return [u.track.id for u in updates if u.kind == kind]


def test_an_occluded_walker_stays_one_event(tud):
    seq = people(tud, {2})  # walks across the view for 120 frames (4.8 s)
    # Hidden for 8 detector frames (0.64 s) in mid-walk, while walking ~55 px.
    seq = [(t, {} if 20 <= i < 28 else boxes) for i, (t, boxes) in enumerate(seq)]
    t = tracker()
    went, updates = feed(t, seq)
    assert len(kinds(updates, "start")) == 1
    assert kinds(updates, "end") == []
    ids = {x for x in went[2][1:] if x is not None}
    assert len(ids) == 1, went[2]
    # It was found again at once, on its predicted box (its 21st sighting is the first after the gap).
    assert went[2][20] is not None


def test_without_motion_the_same_gap_would_split_it(tud):
    """The occlusion above is long enough that the last seen box no longer overlaps the person:
    only the prediction carries the event across (what the test above relies on)."""
    seq = people(tud, {2})
    before, after = seq[19][1][2], seq[28][1][2]
    assert box_iou(before[None], after[None])[0, 0] < TrackerParams().iou


def test_a_person_standing_still_is_one_stationary_event(tud):
    seq = people(tud, {3})  # stands for the whole sequence (7 s)
    # Once its event has started, the detector flickers: a third of the frames missed, a third at a low score.
    seq = [(t, {} if i > 3 and i % 3 == 1 else boxes) for i, (t, boxes) in enumerate(seq)]
    t = tracker(stationary_after_s=3.0)
    went, updates = feed(t, seq, score=lambda p, i: 0.3 if i > 3 and i % 3 == 2 else 0.9)
    assert len(kinds(updates, "start")) == 1 and kinds(updates, "end") == []
    (track,) = t.tracks
    assert track.stationary
    assert [u.track.stationary for u in updates if u.kind == "update" and u.track.stationary][:1] == [True]
    # Standing still adds nothing to its path but the first point and the last sighting.
    assert len(track.trajectory.points(track.first_seen)) <= 3
    # Held still while unseen, it now outlasts max_missed_s: a stationary object's memory is longer.
    end = seq[-1][0]
    assert t.update(Detections.empty(), end + 5.0, 1000 + end + 5.0, TUD_SIZE) == []
    assert kinds(t.update(Detections.empty(), end + 31.0, 1000 + end + 31.0, TUD_SIZE), "end") == [track.id]


def test_two_people_crossing_keep_their_identities(tud):
    # Persons 2 and 7 walk in opposite directions; one passes behind the other (IoU up to 0.84).
    seq = people(tud, {2, 7})
    hidden = 0
    for _, boxes in seq:
        if len(boxes) == 2 and box_iou(boxes[2][None], boxes[7][None])[0, 0] > 0.5:
            # The one behind (the farther, smaller one) is not detected while mostly covered.
            del boxes[min(boxes, key=lambda p: boxes[p][3] - boxes[p][1])]
            hidden += 1
    assert hidden >= 3
    t = tracker()
    went, updates = feed(t, seq)
    assert len(kinds(updates, "start")) == 2
    a = {x for x in went[2][1:] if x is not None}
    b = {x for x in went[7][1:] if x is not None}
    assert len(a) == 1 and len(b) == 1 and a != b, (went[2], went[7])


def test_a_score_flicker_below_min_score_does_not_end_the_event(tud):
    seq = people(tud, {2})
    # After two confident frames, 3 s of scores at 0.3: far longer than max_missed_s (2 s).
    t = tracker()
    went, updates = feed(t, seq, score=lambda p, i: 0.9 if i < 2 else 0.3)
    assert len(kinds(updates, "start")) == 1 and kinds(updates, "end") == []
    assert len({x for x in went[2]}) == 1
    assert t.tracks[0].best_score == pytest.approx(0.9)


def test_low_scores_alone_never_start_an_event(tud):
    t = tracker()
    _, updates = feed(t, people(tud, {2}), score=lambda p, i: 0.3)
    assert updates == [] and t.open_events == 0


def test_a_one_frame_flicker_makes_no_event():
    t = tracker()
    box = np.array([[100, 100, 140, 200]], np.float32)
    assert t.update(Detections(box, [0.9], [0]), 0.0, 100.0) == []
    assert t.update(Detections.empty(), 0.1, 100.1) == []
    assert t.tracks == []


def test_classes_never_match_each_other():
    t = tracker(min_hits=1)
    box = np.array([[0, 0, 40, 100], [0, 0, 40, 100]], np.float32)
    started = t.update(Detections(box, [0.9, 0.9], [0, 1]), 0.0, 0.0)
    assert sorted(u.track.class_id for u in started) == [0, 1]
    assert t.update(Detections(box, [0.8, 0.8], [1, 0]), 0.1, 0.1) == []
    assert len(t.tracks) == 2


def test_walking_out_of_view_ends_the_event_at_once(tud):
    seq = people(tud, {1})  # walks out on the left within 22 frames
    t = tracker()
    _, updates = feed(t, seq)
    assert len(kinds(updates, "start")) == 1
    last = seq[-1][0]
    ended = []
    for k in range(1, 20):  # unseen now: carried on its prediction until that leaves the frame
        ended += kinds(t.update(Detections.empty(), last + 0.08 * k, 1000 + last + 0.08 * k, TUD_SIZE), "end")
        if ended:
            break
    assert ended and 0.08 * k < TrackerParams().max_missed_s


def test_simulated_detector_is_deterministic_and_as_specified(tud):
    sim = SimulatedDetector()
    a, b = sim.run(tud, 3), sim.run(tud, 3)
    assert len(a) == 90 and all(np.array_equal(x.xyxy, y.xyxy) for (_, x), (_, y) in zip(a, b))
    scores = np.concatenate([d.score for _, d in a])
    low = ((scores >= 0.15) & (scores < 0.5)).mean()
    assert 0.1 < low < 0.3  # 15 % of the real boxes plus some false positives


def test_assignment_prefers_more_pairs_then_more_overlap():
    sim = np.array([[0.9, 0.8], [0.85, 0.0]])
    rows, cols = match(sim, 0.3)
    assert sorted(zip(rows.tolist(), cols.tolist())) == [(0, 1), (1, 0)]  # greedy would take (0, 0) and leave 1
    assert match(np.zeros((0, 3)), 0.3)[0].size == 0


def test_trajectory_is_compact_and_bounded():
    tr = Trajectory(0.5, max_points=8)
    for i in range(1000):  # 100 s at 10 fps, walking 20 px/s
        tr.add(i / 10, np.array([i * 2.0, 0, i * 2.0 + 40, 100]))
    points = tr.points(0.0)
    assert len(points) <= 9
    assert points[0][0] == 0.0 and points[-1][0] == pytest.approx(99.9)
    assert all(b[0] > a[0] for a, b in zip(points, points[1:]))


def test_a_new_object_beside_a_track_that_matched_nothing_starts_its_own():
    t = tracker(min_hits=1)
    person = np.array([[100, 100, 140, 200]], np.float32)
    t.update(Detections(person, [0.9], [0]), 0.0, 0.0)
    # the track's class sees nothing this frame; a box of another class far away is new
    far = np.array([[400, 100, 440, 200]], np.float32)
    started = t.update(Detections(far, [0.9], [1]), 0.1, 0.1)
    assert [u.kind for u in started] == ["start"] and len(t.tracks) == 2


def test_a_wild_velocity_over_irregular_frame_times_does_not_end_an_event_mid_frame():
    # Frames 2 ms apart (a replay as fast as possible), then a 0.7 s gap with the object unseen:
    # the prediction flies out of the frame, but it was last seen mid-frame.
    t = tracker(min_hits=1)
    for i in range(10):
        box = np.array([[200 + 3 * i, 80, 290 + 3 * i, 170]], np.float32)
        t.update(Detections(box, [0.9], [0]), 0.002 * i, 0.002 * i, (512, 512))
    assert kinds(t.update(Detections.empty(), 0.7, 0.7, (512, 512)), "end") == []
    assert t.open_events == 1
