"""Motion gating as users meet it: `[motion]` in the config and `config check`, a bad mask file, the
daemon's status.json and `edgewatch status` on a real run, `detect --motion`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from runtime import config
from runtime.bench.footage import EmptyScene, write_clip
from runtime.cli import main
from runtime.table import SchemaError

REPO = Path(__file__).resolve().parents[1]


def _config(tmp_path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_motion_is_on_by_default_and_its_keys_are_bounded(tmp_path):
    cfg = config.load(_config(tmp_path, "[camera]\nsource = 'x.avi'\n[motion]\nmask = 'masks/door.png'\nkeepalive_s = 2\n"))
    assert cfg.motion.enabled and cfg.motion.keepalive_s == 2.0
    assert cfg.motion.mask == tmp_path / "masks" / "door.png"  # relative to the config file
    with pytest.raises(SchemaError, match=r"motion\.frame_height: must be <= 360, got 1000"):
        config.load(_config(tmp_path, "[motion]\nframe_height = 1000\n"))
    with pytest.raises(SchemaError, match=r"motion\.track_refresh_s: must be below tracker\.max_missed_s \(2\)"):
        config.load(_config(tmp_path, "[motion]\ntrack_refresh_s = 2.5\n"))
    with pytest.raises(SchemaError, match=r"motion\.sensitivity: unknown key"):
        config.load(_config(tmp_path, "[motion]\nsensitivity = 3\n"))


@pytest.mark.parametrize("mask, reason", [("missing.png", "no such file"), ("broken.png", "not a readable image")])
def test_config_check_names_a_broken_or_missing_mask_in_one_line(tmp_path, capsys, mask, reason):
    (tmp_path / "broken.png").write_bytes(b"not an image at all")
    path = _config(tmp_path, f"[camera]\nsource = 'x.avi'\n[motion]\nmask = '{mask}'\n")
    assert main(["config", "check", "--config", str(path), "--no-model"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert f"{path}: motion.mask: {tmp_path / mask}: {reason}" in err


def test_config_check_accepts_a_good_mask(tmp_path, capsys):
    cv2.imwrite(str(tmp_path / "mask.png"), np.full((60, 80), 255, np.uint8))
    path = _config(tmp_path, "[camera]\nsource = 'x.avi'\n[motion]\nmask = 'mask.png'\n")
    assert main(["config", "check", "--config", str(path), "--no-model"]) == 0
    assert f"motion on (keep-alive 5 s, mask {tmp_path / 'mask.png'})" in capsys.readouterr().out


def test_the_daemon_reports_motion_share_and_duty(tmp_path, vtest_background, person_bundle, capsys):
    # 8 s of the empty street (half size) as the camera: the model sees a frame now and then
    small = cv2.resize(vtest_background, (384, 288), interpolation=cv2.INTER_AREA)
    scene = EmptyScene(small, seed=21)
    clip = tmp_path / "empty.avi"
    write_clip(clip, (scene.frame(i / 10) for i in range(80)), 10.0)
    cfg = _config(tmp_path, f'[camera]\nsource = "{clip}"\n[model]\npath = "{person_bundle}"\nthreads = 1\n'
                            f'[events]\njournal = false\n')
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "STATE_DIRECTORY", "CONFIGURATION_DIRECTORY")}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run([sys.executable, "-m", "runtime.cli", "run", "--config", str(cfg), "--state-dir", str(state)],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    status = json.loads((state / "status.json").read_text())
    motion = status["motion"]
    assert motion["enabled"] and motion["state"] == "watching"
    assert motion["motion_share"] == 0 and motion["moving"] == 0
    assert motion["frames"] >= 20 and motion["inference_duty"] < 0.3  # whatever frames this machine kept up with
    assert motion["sent_by_reason"]["keepalive"] >= 1 and motion["sent_by_reason"]["motion"] == 0
    assert status["frames"]["inferred"] == sum(motion["sent_by_reason"].values())
    main(["status", "--state-dir", str(state)])  # stale by now (exit 1), still printed
    out = capsys.readouterr().out
    assert "motion:  motion in 0.0% of frames, model on" in out and "keepalive" in out


def test_detect_shows_motion_boxes(tmp_path, vtest_avi, person_bundle, capsys):
    out = tmp_path / "annotated"
    # one frame a second: the first teaches the background (people included), later ones show walkers
    assert main(["detect", str(person_bundle), str(vtest_avi), "--motion", "--every", "10", "--max-frames", "4",
                 "--json", "--annotate", str(out)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["frame"] for line in lines] == [0, 10, 20, 30]
    assert lines[0]["motion"] == {"state": "learning", "boxes": []}
    assert lines[-1]["motion"]["state"] == "watching" and lines[-1]["motion"]["boxes"]
    assert len(list(out.glob("*.jpg"))) == 4
    assert main(["detect", str(person_bundle), str(vtest_avi), "--mask", str(tmp_path / "no.png")]) == 2
    assert "--mask: goes with --motion" in capsys.readouterr().err


def test_monitor_shows_the_daemons_motion_share_and_duty(tmp_path):
    motion = {"enabled": True, "state": "watching", "motion_share": 0.031, "inference_duty": 0.052, "active": 0.0,
              "window_s": 60.0, "frames": 600, "moving": 19, "sent_by_reason": {"motion": 19, "keepalive": 12}}
    (tmp_path / "status.json").write_text(json.dumps({"updated": time.time() + 30, "state": "running", "fps": 0.5,
                                                      "budget": {}, "motion": motion}))
    env = {**os.environ, "STATE_DIRECTORY": str(tmp_path), "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "runtime.cli", "monitor", "--root", str(tmp_path), "--once", "--interval", "0.2"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "budget: daemon running 0.5 fps, motion 3% duty 5%" in done.stdout
