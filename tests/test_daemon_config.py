"""The daemon's TOML config: typed, every default documented, unknown keys and bad values refused
with the field's path; `edgewatch config check`."""

import dataclasses
import re
from pathlib import Path

import pytest

from runtime.cli import main
from runtime.table import SchemaError
from runtime import config
from runtime.config.keys import keys

pytestmark = pytest.mark.board  # runs on the emulated arm64 root too (deploy/arm64/check.py)

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "deploy" / "config.example.toml"


def load_text(tmp_path, text):
    path = tmp_path / "config.toml"
    path.write_text(text)
    return config.load(path)


def test_the_example_file_is_generated_from_the_declarations(capsys):
    """deploy/config.example.toml IS the documentation: every key, its default, bound and doc, as
    declared once in runtime/config/sections.py (`edgewatch config example > deploy/config.example.toml`)."""
    assert EXAMPLE.read_text() == config.example_text()
    assert main(["config", "example"]) == 0
    assert capsys.readouterr().out == config.example_text()


def test_the_example_sets_every_key_to_its_default_and_documents_the_unset_ones():
    documented = config.load(EXAMPLE)
    defaults = config.parse({}, str(EXAMPLE), EXAMPLE.parent)
    assert documented == dataclasses.replace(defaults, source_file=EXAMPLE)
    text = EXAMPLE.read_text()
    for name, section, _, _ in config.SECTIONS:
        for key_name, default, spec in keys(section):
            # set, or shown commented out with an example value; each with its line of documentation
            assert re.search(rf"^#? ?{key_name} =.*# {re.escape(spec.doc)}", text, re.M), f"{name}.{key_name}"


def test_every_number_is_bounded_on_both_sides():
    for name, section, _, _ in config.SECTIONS:
        for key_name, default, spec in keys(section):
            if spec.kind in (int, float) and spec.parse is None:
                assert (spec.gt, spec.ge) != (None, None) and (spec.lt, spec.le) != (None, None), f"{name}.{key_name}"


def test_embedded_default_is_the_bundled_model_on_the_bundled_video():
    cfg = config.load(None)
    assert cfg.source_file is None
    assert Path(cfg.camera.source).name == "vtest.avi" and cfg.camera.loop
    assert not cfg.camera.as_fast_as_possible
    assert cfg.model.path.name == "person-ssdlite"


def test_values_and_relative_paths(tmp_path):
    cfg = load_text(tmp_path, """
[camera]
source = "clips/door.mp4"
fps = 12.5
[model]
path = "models/current"
threads = 2
[detect]
labels = ["person"]
min_area = 0.01
[[detect.zones]]
name = "door"
polygon = [[0, 0.5], [0.5, 0.5], [0.5, 1]]
""")
    assert cfg.camera.source == str(tmp_path / "clips" / "door.mp4")
    assert cfg.camera.fps == 12.5
    assert cfg.model.path == tmp_path / "models" / "current" and cfg.model.threads == 2
    assert cfg.detect.labels == ("person",) and cfg.detect.zones[0].polygon[2] == (0.5, 1.0)
    assert load_text(tmp_path, "[camera]\nsource = 2\n").camera.source == "2"
    assert load_text(tmp_path, '[camera]\nsource = "rtsp://cam/1"\n').camera.source == "rtsp://cam/1"


def test_the_tracker_continues_events_on_low_scores_and_old_configs_keep_loading(tmp_path):
    assert load_text(tmp_path, "").low_score == 0.2
    # a config written before low_score existed, with min_score below its default, still loads
    old = load_text(tmp_path, "[detect]\nmin_score = 0.1\n[tracker]\niou = 0.4\n")
    assert old.low_score == 0.1 and old.tracker.iou == 0.4
    assert load_text(tmp_path, "[tracker]\nlow_score = 0.05\n").low_score == 0.05


@pytest.mark.parametrize("text, message", [
    ("[camera]\nfps = 0\n", "camera.fps: must be > 0, got 0"),
    ("[camera]\nfsp = 10\n", "camera.fsp: unknown key"),
    ("[kamera]\n", "kamera: unknown key"),
    ("[camera]\nwidth = 640\n", "camera.height: set width and height together"),
    ("[camera]\nsource = true\n", "camera.source: must be a device index"),
    ("[camera]\nreconnect_min_s = 10\nreconnect_max_s = 1\n", "camera.reconnect_max_s: must be >= reconnect_min_s"),
    ("[model]\nthreads = 0\n", "model.threads: must be >= 1, got 0"),
    ("[detect]\nmin_score = 1.5\n", "detect.min_score: must be <= 1"),
    ("[detect]\nlabels = \"person\"\n", "detect.labels: must be a list"),
    ("[[detect.zones]]\nname = \"a\"\npolygon = [[0, 0], [1, 0]]\n", "detect.zones[0].polygon: needs at least 3 points"),
    ("[[detect.zones]]\nname = \"a\"\npolygon = [[0, 0], [1, 0], [2, 1]]\n", "detect.zones[0].polygon[2]: must be [x, y]"),
    ("[tracker]\niou = 0\n", "tracker.iou: must be > 0"),
    ("[detect]\nmin_score = 0.3\n[tracker]\nlow_score = 0.4\n", "tracker.low_score: must be <= detect.min_score (0.3), got 0.4"),
    ("[tracker]\nmax_missed_s = 5\nstationary_max_missed_s = 3\n", "tracker.stationary_max_missed_s: must be >= max_missed_s (5)"),
    ("[events]\nsnapshot = \"full\"\n", "events.snapshot: 'full' is not one of box, crop, none"),
    ("camera = 3\n", "camera: must be a table"),
    ("[web]\nhost = \"0.0.0.0\"\n", "web.token: is required when host is not loopback ('0.0.0.0')"),
    ("[web]\nhost = \"192.168.1.20\"\ntoken = \"short\"\n", "web.token: must be 16 to 256 characters"),
    ("[web]\nhost = \"board.local\"\n", "web.host: must be an IP address"),
    ("[web]\nport = 70000\n", "web.port: must be <= 65535"),
    ("[web]\nmax_viewers = 0\n", "web.max_viewers: must be >= 1"),
    ("[web]\nlive_fps = 0\n", "web.live_fps: must be > 0"),
    ("[web]\nenabled = \"yes\"\n", "web.enabled: must be"),
    ("[camera\n", "not valid TOML"),
])
def test_bad_values_name_their_field(tmp_path, text, message):
    with pytest.raises(SchemaError) as exc:
        load_text(tmp_path, text)
    assert message in str(exc.value)
    assert str(exc.value).startswith(str(tmp_path / "config.toml"))
    assert "\n" not in str(exc.value)


def test_config_check_command(tmp_path, capsys, blazeface_bundle):
    good = tmp_path / "good.toml"
    good.write_text(f'[camera]\nsource = "0"\n[model]\npath = "{blazeface_bundle}"\n[detect]\nlabels = ["face"]\n')
    assert main(["config", "check", "--config", str(good)]) == 0
    assert "ok: " in capsys.readouterr().out

    bad = tmp_path / "bad.toml"
    bad.write_text("[camera]\nfps = -1\n")
    assert main(["config", "check", "--config", str(bad)]) == 2
    assert capsys.readouterr().err.strip() == f"edgewatch config: error: {bad}: camera.fps: must be > 0, got -1"

    wrong_label = tmp_path / "label.toml"
    wrong_label.write_text(f'[model]\npath = "{blazeface_bundle}"\n[detect]\nlabels = ["person"]\n')
    assert main(["config", "check", "--config", str(wrong_label)]) == 2
    assert "detect.labels: 'person' not among the model's labels" in capsys.readouterr().err

    missing_model = tmp_path / "nomodel.toml"
    missing_model.write_text('[model]\npath = "nowhere"\n')
    assert main(["config", "check", "--config", str(missing_model)]) == 2
    assert "nowhere" in capsys.readouterr().err
    assert main(["config", "check", "--no-model", "--config", str(missing_model)]) == 0


def test_model_labels_and_iou_for_a_bare_model(tmp_path):
    from runtime.config import parse

    cfg = parse({"model": {"path": "m.tflite", "labels": "labels.txt", "iou": 0.7}}, str(tmp_path / "c.toml"), tmp_path)
    assert cfg.model.labels == tmp_path / "labels.txt" and cfg.model.iou == 0.7
    with pytest.raises(SchemaError, match="model.iou"):
        parse({"model": {"iou": 0}}, "c.toml", tmp_path)


def test_web_defaults_to_loopback_and_another_address_comes_with_its_token(tmp_path):
    web = config.load(None).web
    assert (web.enabled, web.host, web.port, web.token) == (True, "127.0.0.1", 8090, None)
    token = "4f6c2d0e9a8b7c6d5e4f3a2b1c0d9e8f"
    cfg = load_text(tmp_path, f'[web]\nhost = "0.0.0.0"\ntoken = "{token}"\nport = 0\n')
    assert (cfg.web.host, cfg.web.port, cfg.web.token) == ("0.0.0.0", 0, token)
    assert token not in repr(cfg)  # never in a log line
    assert load_text(tmp_path, '[web]\nhost = "::1"\n').web.host == "::1"
