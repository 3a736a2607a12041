"""The pipeline in process: real footage through the real source, detector, tracker and SQLite
event log; a bad frame and a failed model swap are survived.

BlazeFace (MediaPipe's own file) watches a clip made from a real photo (scikit-image's astronaut):
30 frames with her face drifting, then 30 without, so one event must start and end.
"""

import json
import sqlite3
import time

import cv2
import numpy as np
import pytest
from skimage import data

from runtime.events import EventLog, Retention
from runtime.interpreter import ModelError
from runtime.pipeline import Pipeline
from runtime.pipeline.loader import load_and_test
from runtime import config
from runtime.sources import Frame
from conftest import WAIT_S


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("faceclip") / "face.avi"
    img = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 20, img.shape[1::-1])
    for i in range(30):
        out.write(np.roll(img, 3 * i, axis=1))
    for _ in range(30):
        out.write(cv2.GaussianBlur(data_coffee(img.shape), (0, 0), 3))
    out.release()
    return path


def data_coffee(shape):
    """A real photo without a face (scikit-image's coffee), at the clip's size."""
    return cv2.resize(cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR), shape[1::-1])


def make_config(tmp_path, source, model, **camera):
    camera = {"as_fast_as_possible": "true", **camera}
    text = f'[camera]\nsource = "{source}"\n' + "".join(f"{k} = {v}\n" for k, v in camera.items())
    # every frame to the model: these tests are about the pipeline, not the motion gate
    text += f'[model]\npath = "{model}"\nthreads = 1\n[motion]\nenabled = false\n[tracker]\nmax_missed_s = 2.0\n[events]\nbatch_seconds = 0.2\n'
    path = tmp_path / "config.toml"
    path.write_text(text)
    return config.load(path)


def wait(cond, timeout=WAIT_S):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_face_clip_makes_one_event_with_snapshot(tmp_path, face_clip, blazeface_bundle):
    cfg = make_config(tmp_path, face_clip, blazeface_bundle)
    log = EventLog(tmp_path / "events.db", tmp_path / "snapshots", Retention(), 0.2, journal_lines=False)
    pipe = Pipeline(cfg, load_and_test(cfg.model), log)
    pipe.start()
    try:
        # every frame of a recording read as fast as possible is inferred, the last one included
        wait(lambda: pipe.capture.ended and pipe.stats.inferred + pipe.stats.errors == pipe.slot.put_count)
    finally:
        pipe.stop()
        log.close()
    captured, inferred, dropped = pipe.slot.put_count, pipe.stats.inferred, pipe.slot.dropped
    assert captured == 60
    assert inferred == captured and dropped == 0  # a recording as fast as possible: every frame inferred
    assert pipe.stats.errors == 0
    p50, p95 = pipe.stats.ages_ms()
    assert 0 < p50 <= p95

    db = sqlite3.connect(tmp_path / "events.db")
    rows = db.execute('SELECT label, score, start, "end", box, snapshot FROM events').fetchall()
    assert len(rows) == 1, rows
    label, score, start, end, box, snap = rows[0]
    assert label == "face" and score > 0.8 and start < end
    jpeg = cv2.imread(str(tmp_path / snap))
    assert jpeg.shape == (512, 512, 3)  # the whole frame, box drawn
    x1, y1, x2, y2 = map(float, box.strip("[]").split(","))
    assert 150 < x1 < x2 < 360 and 60 < y1 < y2 < 200  # where her face is, give or take the drift


def test_bad_frame_and_bad_variant_are_survived(tmp_path, face_clip, blazeface_bundle):
    cfg = make_config(tmp_path, face_clip, blazeface_bundle, loop="true")
    log = EventLog(tmp_path / "events.db", tmp_path / "snapshots", Retention(), 0.2, journal_lines=False)
    pipe = Pipeline(cfg, load_and_test(cfg.model), log)
    pipe.start()
    try:
        wait(lambda: pipe.stats.inferred >= 3)
        pipe.capture.stop()  # so the broken frame is the one inferred next
        pipe.slot.put(Frame(np.zeros((4, 4, 3), np.float64), 0, time.monotonic(), time.time()))
        wait(lambda: pipe.stats.errors == 1)
        assert "frame must be uint8" in pipe.stats.last_error
        pipe.slot.put(Frame(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), 1, time.monotonic(), time.time()))
        n = pipe.stats.inferred
        wait(lambda: pipe.stats.inferred > n)  # the loop carried on
        old = pipe.detector
        with pytest.raises(Exception, match="no variant 'int8'"):
            pipe.set_variant("int8")
        assert pipe.detector is old
        pipe.set_threads(2)  # a real swap: tested first, adopted between frames
        pipe.slot.put(Frame(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), 2, time.monotonic(), time.time()))
        wait(lambda: pipe.detector is not old)
        health = pipe.health()
        assert health.model.threads == 2 and health.alive
    finally:
        pipe.stop()
        log.close()


def test_a_model_that_cannot_serve_is_refused(tmp_path, blazeface_bundle):
    (blazeface_bundle / "model.tflite").write_bytes((blazeface_bundle / "model.tflite").read_bytes()[:5000])
    with pytest.raises(ModelError, match="truncated or corrupt"):
        load_and_test(config.ModelConfig(path=blazeface_bundle))


def test_actuator_rate_limit_and_pause(tmp_path, face_clip, blazeface_bundle):
    """The resource monitor's knobs: a rate limit drops frames (counted), a pause stops inference.
    Only what holds at any speed is asserted: a cap is a cap however slow the machine."""
    cfg = make_config(tmp_path, face_clip, blazeface_bundle, loop="true", as_fast_as_possible="false")
    log = EventLog(tmp_path / "events.db", tmp_path / "snapshots", Retention(), 0.2, journal_lines=False)
    pipe = Pipeline(cfg, load_and_test(cfg.model), log)
    pipe.set_rate_limit(4.0)
    pipe.start()
    try:
        wait(lambda: pipe.stats.inferred >= 2)
        t0 = time.monotonic()
        n0 = pipe.stats.inferred
        wait(lambda: pipe.stats.inferred >= n0 + 12)
        # Never faster than the cap. The cap spaces the frames prepared for the model: two prepared
        # before n0 was read (one in flight, one waiting) may finish back to back after it, and one
        # more may be prepared right at t0: three of slack.
        rate = (pipe.stats.inferred - n0 - 3) / (time.monotonic() - t0)
        assert rate <= 4.4
        # what the 20 fps clip gave and was not inferred was dropped and counted, never queued
        wait(lambda: pipe.slot.dropped > 0)
        pipe.set_paused(True)
        paused_at = time.monotonic()
        # What was under way when the pause came ends: both threads have gone round since (so nothing
        # more is prepared), and every frame prepared before (in flight, waiting) has been inferred.
        wait(lambda: pipe.heartbeat > paused_at and pipe.stats.inferred == pipe._prepared.put_count)
        n1, c1 = pipe.stats.inferred, pipe.slot.put_count
        wait(lambda: pipe.slot.put_count > c1 + 10)  # the camera goes on ...
        assert pipe.stats.inferred == n1  # ... the model does not
        pipe.set_paused(False)
        pipe.set_rate_limit(None)
        wait(lambda: pipe.stats.inferred > n1 + 5)
        h = pipe.health()
        assert h.rss_mb > 10 and h.invoke_ms > 0 and h.model.variant == "default" and not h.paused
        pipe.shed_caches()
    finally:
        pipe.stop()
        log.close()


def test_filters_labels_score_area_and_zones():
    from runtime.detections import Detections
    from runtime.pipeline.filters import DetectionFilter
    from runtime.config import DetectConfig, Zone

    det = Detections(
        [[10, 10, 50, 90], [300, 300, 340, 390], [10, 10, 12, 12], [100, 10, 140, 60], [300, 10, 340, 90]],
        [0.9, 0.8, 0.9, 0.3, 0.7],
        [0, 0, 0, 0, 1],
    )
    labels = ["person", "car"]
    w, h = 400, 400
    everything = DetectionFilter(DetectConfig(min_score=0.0), labels)
    assert len(everything(det, w, h)) == 5
    assert DetectionFilter(DetectConfig(min_score=0.5), labels)(det, w, h).score.tolist() == pytest.approx([0.9, 0.8, 0.9, 0.7])
    assert DetectionFilter(DetectConfig(labels=("car",)), labels)(det, w, h).class_id.tolist() == [1]
    big = DetectionFilter(DetectConfig(min_score=0.0, min_area=0.001), labels)(det, w, h)  # 160 px^2
    assert len(big) == 4 and 2.0 not in big.xyxy[:, 2]
    # A zone over the bottom-left quarter: boxes whose bottom centre stands in it.
    zone = Zone("door", ((0.0, 0.5), (0.5, 0.5), (0.5, 1.0), (0.0, 1.0)))
    left_bottom = DetectionFilter(DetectConfig(min_score=0.0, zones=(zone,)), labels)(det, w, h)
    assert left_bottom.xyxy.tolist() == []
    lower = Zone("lower", ((0.0, 0.2), (1.0, 0.2), (1.0, 1.0), (0.0, 1.0)))
    kept = DetectionFilter(DetectConfig(min_score=0.0, zones=(lower,)), labels)(det, w, h)
    assert sorted(kept.xyxy[:, 3].tolist()) == [90, 90, 390]  # bottoms at y >= 80 px
    centre = DetectionFilter(DetectConfig(min_score=0.0, zones=(lower,), zone_point="center"), labels)(det, w, h)
    assert sorted(centre.xyxy[:, 3].tolist()) == [390]  # centres at y 50 fall outside


def test_snapshot_modes():
    from runtime.pipeline import snapshot

    img = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    frame = Frame(img, 1, time.monotonic(), time.time())
    box = np.array([178, 80, 272, 178], np.float32)
    whole = cv2.imdecode(np.frombuffer(snapshot.encode(frame, box, 0, 0.9, ["face"], "box", 85), np.uint8), cv2.IMREAD_COLOR)
    assert whole.shape == img.shape and np.abs(whole.astype(int) - img).max() > 100  # the box is drawn
    crop = cv2.imdecode(np.frombuffer(snapshot.encode(frame, box, 0, 0.9, ["face"], "crop", 85), np.uint8), cv2.IMREAD_COLOR)
    assert 94 < crop.shape[1] < 130 and 98 < crop.shape[0] < 135  # the box and a margin
    assert snapshot.encode(frame, box, 0, 0.9, ["face"], "none", 85) is None
    # A small inference stream with a full-size twin (picamera2's lores + main): drawn on the big one.
    small = Frame(cv2.resize(img, (256, 256)), 2, time.monotonic(), time.time(), full=img)
    big = cv2.imdecode(np.frombuffer(snapshot.encode(small, box / 2, 0, 0.9, ["face"], "crop", 85), np.uint8), cv2.IMREAD_COLOR)
    assert abs(big.shape[1] - crop.shape[1]) <= 2


def test_an_event_keeps_its_trajectory_and_the_zones_it_entered(tmp_path, face_clip, blazeface_bundle, capsys):
    from runtime.cli import main

    cfg = make_config(tmp_path, face_clip, blazeface_bundle)
    # Her face (box bottom at ~40 % of the frame's height) is in "upper" only; points every 50 ms.
    text = cfg.source_file.read_text().replace("[tracker]\n", "[tracker]\ntrajectory_interval_s = 0.05\n")
    text += ('[[detect.zones]]\nname = "lower"\npolygon = [[0, 0.6], [1, 0.6], [1, 1], [0, 1]]\n'
             '[[detect.zones]]\nname = "upper"\npolygon = [[0, 0], [1, 0], [1, 0.6], [0, 0.6]]\n')
    cfg.source_file.write_text(text)
    cfg = config.load(cfg.source_file)
    log = EventLog(tmp_path / "events.db", tmp_path / "snapshots", Retention(), 0.2, journal_lines=False)
    pipe = Pipeline(cfg, load_and_test(cfg.model), log)
    pipe.start()
    try:
        wait(lambda: pipe.capture.ended and pipe.slot.peek() is None)
        time.sleep(0.3)  # the last frame's inference
    finally:
        pipe.stop()
        log.close()
    assert main(["events", "--json", "--state-dir", str(tmp_path)]) == 0
    (event,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert event["zones"] == ["upper"] and event["stationary"] is False
    path = event["trajectory"]
    assert len(path) >= 3, path
    times = [p[0] for p in path]
    assert times[0] == 0 and times == sorted(times)
    # the clip drifts her face 3 px right per frame: so does the path
    assert path[-1][1] > path[0][1] + 10, path
