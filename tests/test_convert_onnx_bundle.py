"""`edgewatch convert model.onnx`: the ONNX source end to end, through onnx2tf's SavedModel into a bundle.

The model is written here with the `onnx` package in onnx2tf's own environment (two outputs, one
of them an NCHW feature map that onnx2tf turns NHWC and lists in another order), so this checks
the dispatch by suffix and that converted outputs are paired with the source's by content.
"""

import contextlib
import io
import json
import os
import subprocess

import pytest

from runtime import exitcodes
from runtime.bundle import load_manifest
from runtime.cli import main

pytestmark = pytest.mark.convert
pytest.importorskip("tensorflow")

BUILD = r"""
import sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(3)
w = lambda name, *shape: numpy_helper.from_array((rng.standard_normal(shape) * 0.3).astype(np.float32), name)
nodes = [
    helper.make_node("Conv", ["image", "w1", "b1"], ["c1"], strides=[2, 2], pads=[1, 1, 1, 1]),
    helper.make_node("Relu", ["c1"], ["feature_map"]),
    helper.make_node("GlobalAveragePool", ["feature_map"], ["gap"]),
    helper.make_node("Flatten", ["gap"], ["flat"]),
    helper.make_node("Gemm", ["flat", "w2", "b2"], ["logits"], transB=1),
]
graph = helper.make_graph(
    nodes, "edgewatch_onnx_bundle",
    [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 32, 32])],
    [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 4]),
     helper.make_tensor_value_info("feature_map", TensorProto.FLOAT, [1, 8, 16, 16])],
    [w("w1", 8, 3, 3, 3), w("b1", 8), w("w2", 4, 8), w("b2", 4)],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, sys.argv[1])
"""


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    from converters.onnx import OnnxConversionError
    from converters.onnx.env import isolated_environ, require_env

    try:
        env = require_env()
    except OnnxConversionError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc} (.ci/setup.d/40-onnx2tf.sh should have made it)")
        pytest.skip(str(exc))
    path = tmp_path_factory.mktemp("onnx") / "net.onnx"
    proc = subprocess.run([str(env.python), "-c", BUILD, str(path)], env=isolated_environ(env), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return path


def test_onnx_to_bundle(onnx_model, opencv_data, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("baboon.jpg", "fruits.jpg", "messi5.jpg", "home.jpg"):
        (photos / name).write_bytes((opencv_data / name).read_bytes())
    out = tmp_path / "bundle"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["convert", str(onnx_model), "-o", str(out), "--calibration", str(photos), "--samples", "2",
                     "--held-out", "2", "--runs", "3", "--quantize", "none,int8", "--io-type", "float", "--quiet", "--json"])
    assert code == exitcodes.OK
    report = json.loads(buf.getvalue())
    by_name = {v["name"]: v for v in report["variants"]}
    assert by_name["float32"]["fidelity"]["value"] > 0.99999  # a misordered output pair would score far lower
    assert by_name["int8"]["fidelity"]["value"] > 0.98
    bundle = load_manifest(out / "model.json")
    assert bundle.source["format"] == "onnx" and bundle.source["file"] == "net.onnx"
    assert (bundle.input.width, bundle.input.height) == (32, 32)
