"""`edgewatch detect` and `edgewatch bench` as a user runs them: real processes, real files."""

import json
import subprocess
import sys

import cv2
import pytest

from runtime.interpreter import load_backend


def edgewatch(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "runtime", *map(str, args)], capture_output=True, text=True, timeout=timeout)


def test_detect_json_shape_and_annotate(tmp_path, blazeface_bundle, astronaut_bgr, opencv_data):
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "astronaut.png"), astronaut_bgr)
    cv2.imwrite(str(photos / "fruits.jpg"), cv2.imread(str(opencv_data / "fruits.jpg")))
    out = edgewatch("detect", blazeface_bundle, photos, "--json", "--annotate", tmp_path / "annotated")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [line["input"].split("/")[-1] for line in lines] == ["astronaut.png", "fruits.jpg"]
    face = lines[0]["detections"]
    assert lines[0]["frame"] == 0 and len(face) == 1 and lines[1]["detections"] == []
    assert set(face[0]) == {"label", "class_id", "score", "xyxy"}
    assert face[0]["label"] == "face" and face[0]["class_id"] == 0 and 0.5 < face[0]["score"] <= 1
    x1, y1, x2, y2 = face[0]["xyxy"]
    assert 150 < x1 < x2 < 300 and 50 < y1 < y2 < 220  # source pixels of the 512x512 photo
    drawn = cv2.imread(str(tmp_path / "annotated" / "astronaut.jpg"))
    assert drawn is not None and drawn.shape == astronaut_bgr.shape
    # the box was drawn: pixels on its edge changed
    assert (abs(drawn[int(y1) + 1, int(x1) + 20].astype(int) - astronaut_bgr[int(y1) + 1, int(x1) + 20]).sum() > 60)


def test_detect_on_a_video(blazeface_bundle, vtest_avi):
    out = edgewatch("detect", blazeface_bundle, vtest_avi, "--json", "--every", "100", "--max-frames", "3")
    assert out.returncode == 0, out.stderr
    frames = [json.loads(line)["frame"] for line in out.stdout.splitlines()]
    assert frames == [0, 100, 200]


@pytest.mark.parametrize(
    "args, message",
    [
        (["detect", "{bundle}", "/nonexistent.jpg"], "/nonexistent.jpg: no such file or folder"),
        (["detect", "/nonexistent-model", "{photo}"], "/nonexistent-model: no such file or folder"),
        (["detect", "{photo}", "{photo}"], "expected a bundle folder, a model.json or a .tflite"),
        (["detect", "{bundle}", "{bundle}/model.json"], "not a readable image"),
        (["detect", "{bundle}", "{photo}", "--every", "0"], "--every: must be >= 1"),
        (["bench", "{bundle}", "--threads", "two"], "argument --threads: must be a whole number, got 'two'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(blazeface_bundle, opencv_data, args, message):
    args = [a.format(bundle=blazeface_bundle, photo=opencv_data / "messi5.jpg") for a in args]
    out = edgewatch(*args)
    assert out.returncode == 2
    errors = [line for line in out.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and message in errors[0], out.stderr
    assert "Traceback" not in out.stderr


def test_bench_json(blazeface_bundle, opencv_data):
    out = edgewatch("bench", blazeface_bundle, "--threads", "1,2", "--runs", "20", "--input", opencv_data / "messi5.jpg", "--json")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["threads"] for r in rows] == [1, 2]
    for r in rows:
        assert r["backend"].split()[0] == load_backend().name and r["backend"].endswith(" XNNPACK")
        for key in ("init_ms", "first_invoke_ms", "peak_rss_mb"):
            assert r[key] > 0
        inv = r["invoke_ms"]
        assert 0 < inv["p50"] <= inv["p90"] <= inv["p99"]
        assert r["runs"] == 20


def test_usage_lists_commands():
    out = edgewatch("--help")
    assert out.returncode == 0 and "detect" in out.stdout and "bench" in out.stdout
    assert edgewatch("frobnicate").returncode == 2
