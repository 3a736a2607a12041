"""The board half on arm64, in CI: deploy/arm64/check.py on Bookworm with LiteRT (Raspberry Pi
OS's Python and the default interpreter) under qemu-user. A clean root, the runtime alone from
aarch64 wheels, the runtime's test suite inside it, and `edgewatch detect` on every variant of
the bundled model, box for box against x86. The other two targets (tflite-runtime, Trixie) are
the same command by hand: deploy/arm64/README.md. On a cold machine this takes 15-30 minutes, so
the check starts when collection ends and runs beside the rest of the suite (tests/arm64_early.py);
this test runs last and waits for it."""

from __future__ import annotations

import json

import pytest

import arm64_early

FOOTPRINT_MB = 250  # the runtime's venv on the board, without picamera2

pytestmark = [pytest.mark.arm64, pytest.mark.slow, pytest.mark.timeout(arm64_early.TIMEOUT_S + 60)]


def test_bookworm_litert_board_under_emulation(request, person_bundle):
    running = request.config.stash.get(arm64_early.RUNNING, None)
    if running is None:
        pytest.skip(arm64_early.missing() or "the arm64 check was not started (see tests/arm64_early.py)")
    code, output = arm64_early.finish(running)
    print(output[-6000:])  # the figures table, in the test log
    assert code == 0, output[-8000:]
    (result,) = json.loads(running.report.read_text())["results"]
    assert result["backend"] == "ai_edge_litert" and result["python"].startswith("3.11.")
    variants = json.loads((person_bundle / "model.json").read_text())["variants"]
    runs = sorted(f"{person_bundle.name}/{v['name']}" for v in variants)
    assert sorted(result["xnnpack"]) == runs and all(result["xnnpack"].values()), result["xnnpack"]
    assert result["tests_exit"] == 0 and " passed" in result["tests"] and "failed" not in result["tests"]
    assert result["venv_mb"] < FOOTPRINT_MB
    assert sorted(result["detect"]) == runs
    for name, cmp in result["detect"].items():
        assert cmp["frames"] == len(arm64_early.IMAGES) and cmp["detections"] > 0, name
        assert cmp["problems"] == [] and cmp["max_box_px"] <= 1.0, (name, cmp)
