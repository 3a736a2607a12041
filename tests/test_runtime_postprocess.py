"""TFLite_Detection_PostProcess outputs, in the order of either exporter, resolved by name and shape.

The person detector's variant with the post-process op appended (the converter's output) is
presented three ways: as written (boxes, classes, scores, count), with the outputs listed in the
TF2 exporter's order (scores, boxes, count, classes), and that order again under opaque names
that carry no role. All three must give the same detections as the bundle's own decoding.
"""


import cv2
import numpy as np
import pytest

from runtime.detector import Detector, DetectorOptions
from runtime.interpreter import Model

from tflite_edit import output_indices, rename_tensor, reorder_outputs

pytestmark = pytest.mark.board  # runs on the emulated arm64 root too (deploy/arm64/check.py)

VARIANT = "model-int8-postprocess.tflite"


@pytest.fixture(scope="module")
def frames(vtest_avi):
    cap = cv2.VideoCapture(str(vtest_avi))
    out = []
    for i in range(300):
        ok, frame = cap.read()
        if i % 100 == 0:
            out.append(frame)
    cap.release()
    return out


@pytest.fixture(scope="module")
def layouts(tmp_path_factory, person_bundle):
    folder = tmp_path_factory.mktemp("pp")
    data = (person_bundle / VARIANT).read_bytes()
    (folder / "tf1.tflite").write_bytes(data)
    tf2 = reorder_outputs(data, [2, 0, 3, 1])  # scores, boxes, count, classes
    (folder / "tf2.tflite").write_bytes(tf2)
    opaque = tf2
    for k, index in enumerate(output_indices(tf2)):
        opaque = rename_tensor(opaque, index, f"StatefulPartitionedCall:{k}")
    (folder / "opaque.tflite").write_bytes(opaque)
    (folder / "labels.txt").write_text("person\n")
    return folder


def test_the_edits_really_reorder(layouts):
    names = lambda p: [o.name.rstrip("_") for o in Model(p).outputs]  # noqa: E731
    assert names(layouts / "tf1.tflite") == ["TFLite_Detection_PostProcess", *(f"TFLite_Detection_PostProcess:{i}" for i in (1, 2, 3))]
    assert names(layouts / "tf2.tflite") == [f"TFLite_Detection_PostProcess{s}" for s in (":2", "", ":3", ":1")]
    assert names(layouts / "opaque.tflite") == [f"StatefulPartitionedCall:{k}" for k in range(4)]


@pytest.mark.parametrize("layout", ["tf1", "tf2", "opaque"])
def test_same_detections_in_any_order(layouts, person_bundle, frames, layout):
    reference = Detector.create_from_options(DetectorOptions(person_bundle, variant="int8-postprocess", threads=1))
    bare = Detector.create_from_options(DetectorOptions(layouts / f"{layout}.tflite", labels=layouts / "labels.txt", threads=1, score_threshold=0.5))
    assert bare.bundle.decoder == "ssd_postprocess"
    total = 0
    for frame in frames:
        # the same input tensor (a bare .tflite gets default preprocessing, the bundle its own)
        tensor, _ = reference.preprocessor(frame)
        a, b = reference.infer(tensor), bare.infer(tensor)
        np.testing.assert_allclose(b.xyxy, a.xyxy, atol=1e-6)
        np.testing.assert_allclose(b.score, a.score, atol=1e-6)
        assert b.class_id.tolist() == a.class_id.tolist() == [0] * len(a)
        total += len(a)
    assert total >= 5  # people were found, so the comparison meant something


def test_postprocess_variant_agrees_with_the_anchor_decoder(person_bundle, frames):
    """The op appended by the converter and the runtime's own decoder see the same people."""
    from runtime.detections import box_iou

    ours = Detector.create_from_options(DetectorOptions(person_bundle, variant="int8", threads=1))
    op = Detector.create_from_options(DetectorOptions(person_bundle, variant="int8-postprocess", threads=1))
    for frame in frames:
        a, b = ours.detect(frame), op.detect(frame)
        confident = a[a.score > 0.6]
        if len(confident):
            # Two int8 files quantized apart (the int8 file serves every input size and is calibrated
            # over them all): the same people, their boxes within quantization noise (a wrong
            # decoder would put them far apart)
            assert len(b) and box_iou(confident.xyxy, b.xyxy).max(axis=1).min() > 0.8
