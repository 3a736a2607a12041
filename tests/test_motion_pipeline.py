"""Motion gating in the real pipeline (gate, person model, tracker, SQLite event log), replayed frame
by frame at the footage's own 10 fps through `Pipeline.process`, so what is compared does not
depend on this machine's speed: an empty scene, walkers, a person who stands still."""

from __future__ import annotations

import numpy as np
import pytest

from runtime import config as config_mod
from runtime.bench.footage import EmptyScene, read_frames, slow_light
from runtime.bench.motion import RunResult, Sample, match_events, read_events
from runtime.events import EventLog, Retention
from runtime.pipeline import Pipeline
from runtime.pipeline.loader import load_and_test
from runtime.sources import Frame

FPS = 10.0
T0 = 1_700_000_000.0  # wall clock of frame time 0


@pytest.fixture
def make_pipeline(tmp_path, person_bundle):
    made = []

    def make(name: str, **motion):
        cfg = config_mod.parse({"camera": {"source": str(tmp_path / "not-opened.avi")}, "model": {"path": str(person_bundle)},
                                "motion": motion, "events": {"journal": False, "snapshot": "none"}}, f"(test {name})", tmp_path)
        folder = tmp_path / name
        log = EventLog(folder / "events.db", folder / "snapshots", Retention(), 0.2, journal_lines=False)
        pipe = Pipeline(cfg, load_and_test(cfg.model), log)
        made.append(log)
        return pipe, log, folder / "events.db"

    yield make
    for log in made:
        log.close()


def replay(pipe: Pipeline, images, t0: float = 0.0, seq0: int = 0) -> list[bool]:
    """Each image through the pipeline as if captured at t0 + i / FPS; which ones the model saw."""
    return [pipe.process(Frame(img, seq0 + i, t0 + i / FPS, T0 + t0 + i / FPS)) for i, img in enumerate(images)]


def finish(pipe: Pipeline, log: EventLog, db) -> list[dict]:
    pipe.close_events()
    assert log.flush(timeout=120.0)  # a loaded machine writes late, not never
    return read_events(db)


def test_an_empty_noisy_scene_sends_almost_nothing_to_the_model(make_pipeline, vtest_background):
    # 30 s of the empty street: sensor noise, the light swinging +-15 %
    pipe, log, db = make_pipeline("empty")
    scene = EmptyScene(vtest_background, light=slow_light(0.15, 30.0), seed=11)
    sent = replay(pipe, (scene.frame(i / FPS) for i in range(300)))
    # the first frame, a frame per track_refresh_s while the model learns the scene (settle_s = 1 s),
    # then one per keep-alive (5 s)
    most = 2 + 300 / (5 * FPS) + 1
    assert sum(sent) <= most, np.flatnonzero(sent)
    health = pipe.health().motion
    assert health.motion_share == 0 and health.inference_duty <= most / 300 and health.state == "watching"
    assert health.sent_by_reason["keepalive"] >= 5 and health.sent_by_reason["motion"] == 0
    assert finish(pipe, log, db) == []


def test_walkers_start_events_within_two_frames_of_the_ungated_pipeline(make_pipeline, vtest_background, vtest_avi):
    # 2 s of the empty street, then vtest.avi from frame 495, where people walk in at the right
    # and bottom edges (frames 505-509) while others cross: every event the ungated pipeline makes,
    # the gated one makes too, starting at most two frames later
    scene = EmptyScene(vtest_background, light=lambda t: 1.0, seed=12)
    empty = [scene.frame(i / FPS) for i in range(20)]
    walkers = read_frames(vtest_avi, start=495, limit=45)
    runs = {}
    for name, enabled in (("ungated", False), ("gated", True)):
        pipe, log, db = make_pipeline(name, enabled=enabled)
        sent = replay(pipe, empty) + replay(pipe, walkers, t0=2.0, seq0=20)
        runs[name] = (finish(pipe, log, db), sum(sent[:20]), sum(sent[20:]))
    reference, gated = runs["ungated"][0], runs["gated"][0]
    assert len(reference) >= 4
    # the replayed frames' timestamps are the clip's time: frame k at T0 + k / FPS
    clock = [Sample(T0, 0, 0, 0.0), Sample(T0 + 65 / FPS, 65, 0, 0.0)]
    pairs, missed = match_events(RunResult("ungated", [], reference, clock, None), RunResult("gated", [], gated, clock, None))
    assert not missed, (missed, gated)
    for ev, g in pairs:
        assert g["start"] - ev["start"] <= 2 / FPS + 1e-6, (ev, g)
    # what it cost: all 65 frames ungated; the empty part gated costs a frame or two
    assert runs["ungated"][1:] == (20, 45)
    assert runs["gated"][1] <= 3 and runs["gated"][2] >= 42


def test_a_person_standing_still_stays_tracked(make_pipeline, vtest_background, vtest_avi):
    # a person (real pixels: frame 100 of vtest.avi, where the model finds him at 497,150-531,225)
    # appears in the empty street at 2 s, stands still for 10 s, then is gone
    pipe, log, db = make_pipeline("still", absorb_s=2.0)
    scene = EmptyScene(vtest_background, light=lambda t: 1.0, seed=13)
    person = read_frames(vtest_avi, start=100, limit=1)[0]
    patch = (slice(140, 235), slice(490, 540))

    def frames():
        for i in range(170):
            frame = scene.frame(i / FPS)
            if 20 <= i < 120:
                frame[patch] = person[patch]
            yield frame

    sent = replay(pipe, frames())
    assert pipe.tracker.open_events == 0  # his event ended by itself, max_missed_s after he left
    events = finish(pipe, log, db)
    assert len(events) == 1, events
    ev = events[0]
    assert ev["start"] - T0 <= 2.0 + 2 / FPS  # seen with the motion of his arrival
    # tracked to the end, once still through track refreshes alone: last seen within one refresh
    # of his leaving at 12 s
    assert 12.0 - 0.5 - 1e-6 <= ev["end"] - T0 < 12.0, ev
    still = sent[50:115]  # absorbed into the background by 2 + 2 s, still there until 12 s
    assert 0 < sum(still) <= len(still) / (0.5 * FPS) + 2  # one frame per track_refresh_s, not every frame
    assert pipe.health().motion.sent_by_reason["tracks"] >= 12


def test_two_runs_of_one_walk_match_by_path_whatever_box_each_stored():
    # one person walking 100 px right over 10 s, seen by two runs that stored their box at
    # different moments (IoU 0 between the stored boxes); and someone else, 200 px below
    clock = [Sample(T0, 0, 0, 0.0), Sample(T0 + 20.0, 200, 0, 0.0)]
    walk = [[s, 10.0 * s, 0.0, 10.0 * s + 30.0, 60.0] for s in range(11)]
    a = {"label": "person", "start": T0, "end": T0 + 10, "box": walk[0][1:], "trajectory": walk}
    b = {"label": "person", "start": T0 + 0.1, "end": T0 + 10, "box": walk[-1][1:],
         "trajectory": [[p[0] - 0.1] + p[1:] for p in walk[1:]]}
    other = {**b, "box": [0.0, 200.0, 30.0, 260.0], "trajectory": [[p[0], p[1], p[2] + 200, p[3], p[4] + 200] for p in b["trajectory"]]}
    reference, gated = RunResult("a", [], [a], clock, None), RunResult("b", [], [other, b], clock, None)
    pairs, missed = match_events(reference, gated)
    assert not missed and pairs[0][1] is b
    assert match_events(reference, RunResult("c", [], [other], clock, None)) == ([], [a])


def test_the_benchs_replay_of_a_written_clip_tells_the_gates_own_effect(tmp_path, person_bundle, vtest_background, vtest_avi):
    # the bench's replay path: a Motion-JPEG clip (3 s empty, 45 frames of walkers, 3 s empty with
    # the light up 40 % after 1 s) read back frame by frame, ungated and gated
    from runtime.bench.footage import step_light, write_clip
    from runtime.bench.motion import _Run, summarise_replay

    scene = EmptyScene(vtest_background, light=lambda t: 1.0, seed=14)
    after = EmptyScene(vtest_background, light=step_light(lambda t: 1.0, 1.0, 1.4), seed=15)
    clip = tmp_path / "clip.avi"
    frames = [scene.frame(i / FPS) for i in range(30)] + read_frames(vtest_avi, start=495, limit=45) \
        + [after.frame(i / FPS) for i in range(30)]
    assert write_clip(clip, iter(frames), FPS) == 105
    runs = {name: _Run(name, clip, [], str(person_bundle), None, motion, False, tmp_path / name).replay(clip)
            for name, motion in (("ungated", False), ("gated", True))}
    result = summarise_replay(runs["ungated"], runs["gated"], runs["gated"], step_frame=85)
    events = result["events"]
    assert events["reference_events"] >= 4 and events["recall"] == 1.0, events
    assert events["start_delay_frames"]["max"] <= 2
    assert result["sent_share"]["ungated"] == 1.0 and result["sent_share"]["gated"] < 0.7
    assert result["light_step_events"] == 0
    assert runs["gated"].motion["relearned"] == 1  # the step was seen, and learned
