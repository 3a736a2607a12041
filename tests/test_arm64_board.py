"""The board half on arm64, in CI: deploy/arm64/check.py on Bookworm with LiteRT (Raspberry Pi
OS's Python and the default interpreter) under qemu-user. A clean root, the runtime alone from
aarch64 wheels, the runtime's test suite inside it, and `edgewatch detect` on every variant of
the bundled model, box for box against x86. The other two targets (tflite-runtime, Trixie) are
the same command by hand: deploy/arm64/README.md. On a cold machine this takes 15-30 minutes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHECK = REPO / "deploy" / "arm64" / "check.py"
QEMU_BINFMT = Path("/usr/lib/binfmt.d/qemu-aarch64.conf")
FOOTPRINT_MB = 250  # the runtime's venv on the board, without picamera2

pytestmark = [pytest.mark.arm64, pytest.mark.slow]


def test_bookworm_litert_board_under_emulation(tmp_path, person_bundle, opencv_data):
    if os.geteuid() != 0 or not shutil.which("debootstrap") or not QEMU_BINFMT.exists():
        pytest.skip("needs root, debootstrap and qemu-user-static (.ci/setup.d/60-arm64.sh)")
    report = tmp_path / "arm64.json"
    images = [opencv_data / "messi5.jpg", opencv_data / "basketball1.png"]
    done = subprocess.run(
        [sys.executable, str(CHECK), "--targets", "bookworm-litert", "--model", str(person_bundle),
         *(a for i in images for a in ("--image", str(i))), "--report", str(report)],
        capture_output=True, text=True, timeout=60 * 60)
    print(done.stdout)  # the figures table, in the test log
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    (result,) = json.loads(report.read_text())["results"]
    assert result["backend"] == "ai_edge_litert" and result["python"].startswith("3.11.")
    variants = json.loads((person_bundle / "model.json").read_text())["variants"]
    runs = sorted(f"{person_bundle.name}/{v['name']}" for v in variants)
    assert sorted(result["xnnpack"]) == runs and all(result["xnnpack"].values()), result["xnnpack"]
    assert result["tests_exit"] == 0 and " passed" in result["tests"] and "failed" not in result["tests"]
    assert result["venv_mb"] < FOOTPRINT_MB
    assert sorted(result["detect"]) == runs
    for name, cmp in result["detect"].items():
        assert cmp["frames"] == len(images) and cmp["detections"] > 0, name
        assert cmp["problems"] == [] and cmp["max_box_px"] <= 1.0, (name, cmp)
