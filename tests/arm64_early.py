"""The arm64 check, started as soon as the session has collected its test, and run beside the rest
of the suite at low priority (check.py's --nice). It is mostly one emulated core for 20-30
minutes: run alone, before or after the x86 tests, it would add all of that to CI's time.
tests/test_arm64_board.py runs last, waits for it and reads its report; tests/conftest.py starts
it and stops whatever is left of it when the session ends."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHECK = REPO / "deploy" / "arm64" / "check.py"
QEMU_BINFMT = Path("/usr/lib/binfmt.d/qemu-aarch64.conf")
OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")
MODEL = REPO / "runtime" / "assets" / "person-ssdlite"
IMAGES = (OPENCV_DATA / "messi5.jpg", OPENCV_DATA / "basketball1.png")
# A cold debootstrap, the install under emulation, the board's tests and detect: about 30 minutes
# on CI's 2 cores beside the x86 suite; the bound is for a check that hangs, not a slow one.
TIMEOUT_S = 50 * 60


@dataclass
class Running:
    proc: subprocess.Popen
    report: Path
    output: Path  # stdout and stderr: files, not pipes, since nobody reads them until it ends
    started: float


RUNNING = pytest.StashKey[Running]()


def missing() -> str | None:
    """What this machine lacks to run the check, else None."""
    if os.geteuid() != 0 or not shutil.which("debootstrap") or not QEMU_BINFMT.exists():
        return "needs root, debootstrap and qemu-user-static (.ci/setup.d/60-arm64.sh)"
    return None


def start() -> Running:
    folder = Path(tempfile.mkdtemp(prefix="edgewatch-arm64-"))
    report, output = folder / "arm64.json", folder / "output.txt"
    argv = [sys.executable, str(CHECK), "--targets", "bookworm-litert", "--model", str(MODEL),
            *(a for i in IMAGES for a in ("--image", str(i))), "--report", str(report)]
    with open(output, "w") as out:
        # its own process group: the emulated processes it runs must not outlive it
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    return Running(proc, report, output, time.monotonic())


def finish(running: Running) -> tuple[int, str]:
    """Waits for the check (what is left of TIMEOUT_S): (exit status, its output)."""
    try:
        code = running.proc.wait(max(1.0, running.started + TIMEOUT_S - time.monotonic()))
    except subprocess.TimeoutExpired:
        stop(running)
        pytest.fail(f"deploy/arm64/check.py still running after {TIMEOUT_S} s: {running.output.read_text()[-4000:]}")
    return code, running.output.read_text()


def stop(running: Running) -> None:
    if running.proc.poll() is None:
        try:
            os.killpg(running.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        running.proc.wait()
