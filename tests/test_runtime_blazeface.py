"""BlazeFace (MediaPipe's own model file) through the runtime on real photos."""

import cv2
import numpy as np
import pytest
from skimage import data

from runtime.detections import box_iou
from runtime.detector import Detector, DetectorOptions

pytestmark = pytest.mark.board  # runs on the emulated arm64 root too (deploy/arm64/check.py)

# Hand-labelled face boxes (x1, y1, x2, y2), forehead to chin, ear to ear as visible.
FACES = {
    "astronaut": (178, 80, 272, 178),
    "camera": (180, 112, 255, 200),
}
NO_FACE = ["coffee", "rocket", "coins", "immunohistochemistry"]
NO_FACE_OPENCV = ["fruits.jpg", "home.jpg", "building.jpg", "board.jpg"]


def bgr(name):
    img = getattr(data, name)()
    return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR if img.ndim == 2 else cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="module")
def face_detector(tmp_path_factory, blazeface_tflite):
    import json
    import shutil

    from conftest import BLAZEFACE_MANIFEST

    folder = tmp_path_factory.mktemp("bf")
    shutil.copy(blazeface_tflite, folder / "model.tflite")
    (folder / "model.json").write_text(json.dumps(BLAZEFACE_MANIFEST))
    return Detector.create_from_options(DetectorOptions(folder, threads=1))


@pytest.mark.parametrize("name", sorted(FACES))
def test_face_found_where_labelled(face_detector, name):
    det = face_detector.detect(bgr(name))
    assert len(det) == 1, det.to_records()
    assert box_iou(det.xyxy, [FACES[name]])[0, 0] >= 0.5
    assert det.keypoints.shape == (1, 6, 2)
    # the eyes (keypoints 0, 1) lie inside the face box, in its upper half
    x1, y1, x2, y2 = det.xyxy[0]
    for kx, ky in det.keypoints[0, :2]:
        assert x1 < kx < x2 and y1 < ky < (y1 + y2) / 2


@pytest.mark.parametrize("name", NO_FACE)
def test_no_face_no_box(face_detector, name):
    assert len(face_detector.detect(bgr(name))) == 0


@pytest.mark.parametrize("name", NO_FACE_OPENCV)
def test_no_face_in_opencv_photos(face_detector, opencv_data, name):
    frame = cv2.imread(str(opencv_data / name))
    assert frame is not None
    assert len(face_detector.detect(frame)) == 0


def test_same_answer_at_any_thread_count(blazeface_bundle):
    frame = bgr("astronaut")
    one = Detector.create_from_options(DetectorOptions(blazeface_bundle, threads=1)).detect(frame)
    two = Detector.create_from_options(DetectorOptions(blazeface_bundle, threads=2)).detect(frame)
    np.testing.assert_allclose(one.xyxy, two.xyxy, atol=1e-3)


def test_score_threshold_option(blazeface_bundle):
    strict = Detector.create_from_options(DetectorOptions(blazeface_bundle, score_threshold=0.99))
    assert len(strict.detect(bgr("astronaut"))) == 0
