"""The person detector's decode + NMS against TensorFlow's own post-processing, frame by frame.

The converted float32 variant is fed the graph's own preprocessed tensor (`Preprocessor/sub`), so
this isolates the runtime's anchors, box coder, score conversion and NMS: they must reproduce the
graph's `detection_boxes` to within 1e-3.
"""

import cv2
import numpy as np
import pytest

from runtime.detector import Detector, DetectorOptions

pytestmark = pytest.mark.convert
THRESHOLD = 0.3
FRAMES = (0, 120, 240, 360, 480, 600, 720)


@pytest.fixture(scope="module")
def tf_graph(ssdlite_graph):
    tf = pytest.importorskip("tensorflow")
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(ssdlite_graph.read_bytes())
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    session = tf.compat.v1.Session(graph=graph)
    yield session
    session.close()


def frames(path):
    cap = cv2.VideoCapture(str(path))
    out = {}
    for i in range(max(FRAMES) + 1):
        ok, frame = cap.read()
        assert ok
        if i in FRAMES:
            out[i] = frame
    cap.release()
    return out


def test_decode_and_nms_match_tensorflow(tf_graph, person_bundle, vtest_avi):
    det = Detector.create_from_options(DetectorOptions(person_bundle, variant="float32", score_threshold=THRESHOLD, threads=2))
    assert det.bundle.decoder == "ssd_anchors"
    compared = 0
    for index, frame in frames(vtest_avi).items():
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)[None]
        pre, boxes, scores, count = tf_graph.run(
            ["Preprocessor/sub:0", "detection_boxes:0", "detection_scores:0", "num_detections:0"], {"image_tensor:0": rgb}
        )
        n = int(count[0])
        keep = scores[0, :n] > THRESHOLD
        tf_xyxy = boxes[0, :n][keep][:, [1, 0, 3, 2]]
        ours = det.infer(pre.astype(np.float32)).clipped(1.0, 1.0)  # the graph clips to its window
        assert len(ours) == len(tf_xyxy), f"frame {index}: {len(ours)} boxes vs TensorFlow's {len(tf_xyxy)}"
        np.testing.assert_allclose(np.sort(ours.score)[::-1], scores[0, :n][keep], atol=1e-3)
        order = np.argsort(-ours.score, kind="stable")
        np.testing.assert_allclose(ours.xyxy[order], tf_xyxy, atol=1e-3, err_msg=f"frame {index}")
        compared += len(tf_xyxy)
    assert compared >= 20  # vtest.avi is a busy street: plenty of people to compare
