"""The ONNX source: a model exported here, converted by onnx2tf in its own venv, checked against onnxruntime.

The ONNX model is built in the test with `onnx.helper` (in onnx2tf's venv, which has onnx and
onnxruntime), as a small NCHW detector: conv/BN/ReLU6/depthwise backbone, max-pool, resize and a
channel concat, then a head reshaped and transposed to (1, anchors, 4 + classes), the layout
onnx2tf must get right. onnxruntime's outputs on real photos are the reference; the SavedModel
(and the TFLite file made from it) run in this interpreter's TensorFlow. load_onnx points onnx2tf's
proxies at a closed port, so a conversion that succeeds here downloaded nothing.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from converters.onnx import OnnxConversionError, load_onnx
from converters.onnx.env import isolated_environ, require_env
from converters.onnx.sample_data import FILE_NAME
from runtime.preprocess import InputSpec, Preprocessor

pytestmark = pytest.mark.convert

SIZE = 96
PHOTOS = ("fruits.jpg", "baboon.jpg", "messi5.jpg", "home.jpg")

# Runs in onnx2tf's venv: argv = model.onnx, images.npy (N,H,W,3 float RGB 0..1), reference.npz.
BUILD_AND_REFERENCE = r"""
import sys
import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

onnx_path, images_path, reference_path = sys.argv[1:4]
size = int(sys.argv[4])
rng = np.random.default_rng(7)

def weight(name, *shape):
    fan_in = int(np.prod(shape[1:]))
    return numpy_helper.from_array((rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32), name)

def const(name, values, dtype=np.float32):
    return numpy_helper.from_array(np.asarray(values, dtype), name)

inits = [
    weight("w1", 16, 3, 3, 3), const("b1", rng.standard_normal(16) * 0.1),
    const("bn_scale", 1 + 0.1 * rng.standard_normal(16)), const("bn_bias", 0.1 * rng.standard_normal(16)),
    const("bn_mean", 0.1 * rng.standard_normal(16)), const("bn_var", 1 + 0.1 * np.abs(rng.standard_normal(16))),
    weight("w2", 16, 1, 3, 3), const("lo", 0.0), const("hi", 6.0),
    weight("w3", 32, 16, 1, 1), const("b3", rng.standard_normal(32) * 0.1),
    const("scales", [1, 1, 2, 2]),
    weight("w4", 6, 64, 1, 1), const("b4", rng.standard_normal(6) * 0.1),
    const("head_shape", [1, 6, -1], np.int64),
]
nodes = [
    helper.make_node("Conv", ["image", "w1", "b1"], ["c1"], strides=[2, 2], pads=[1, 1, 1, 1]),
    helper.make_node("BatchNormalization", ["c1", "bn_scale", "bn_bias", "bn_mean", "bn_var"], ["n1"], epsilon=1e-3),
    helper.make_node("Relu", ["n1"], ["r1"]),
    helper.make_node("Conv", ["r1", "w2"], ["c2"], group=16, pads=[1, 1, 1, 1]),
    helper.make_node("Clip", ["c2", "lo", "hi"], ["r2"]),
    helper.make_node("Conv", ["r2", "w3", "b3"], ["c3"]),
    helper.make_node("MaxPool", ["c3"], ["p3"], kernel_shape=[2, 2], strides=[2, 2]),
    helper.make_node("Resize", ["p3", "", "scales"], ["u3"], mode="nearest",
                     coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
    helper.make_node("Concat", ["u3", "c3"], ["features"], axis=1),
    helper.make_node("Conv", ["features", "w4", "b4"], ["h4"]),
    helper.make_node("Reshape", ["h4", "head_shape"], ["h5"]),
    helper.make_node("Transpose", ["h5"], ["head"], perm=[0, 2, 1]),
    helper.make_node("GlobalAveragePool", ["features"], ["gap"]),
    helper.make_node("Flatten", ["gap"], ["embedding"]),
]
half = size // 2
graph = helper.make_graph(
    nodes, "edgewatch_test_net",
    [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, size, size])],
    [helper.make_tensor_value_info("head", TensorProto.FLOAT, [1, half * half, 6]),
     helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, 64, half, half]),
     helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, 64])],
    inits,
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="edgewatch-test")
model.ir_version = 8
onnx.checker.check_model(model, full_check=True)
onnx.save(model, onnx_path)

session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
images = np.load(images_path)
outputs = {name: [] for name in ("head", "features", "embedding")}
for image in images:
    nchw = np.ascontiguousarray(image.transpose(2, 0, 1)[None])
    for name, value in zip(outputs, session.run(list(outputs), {"image": nchw})):
        outputs[name].append(value[0])
np.savez(reference_path, **{k: np.stack(v) for k, v in outputs.items()})
"""

# Runs in onnx2tf's venv: argv = kind, path. Valid ONNX models onnx2tf cannot convert.
UNCONVERTIBLE = r"""
import sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

kind, path = sys.argv[1:3]
x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
opsets = [helper.make_opsetid("", 17)]
if kind == "unsupported":
    # CastLike is standard ONNX that onnx2tf has no converter for; the other is a vendor op.
    nodes = [helper.make_node("CastLike", ["x", "like"], ["h"]),
             helper.make_node("FrobnicateBoxes", ["h"], ["y"], domain="com.example.edgewatch")]
    inits = [numpy_helper.from_array(np.zeros(1, np.float32), "like")]
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])
    opsets.append(helper.make_opsetid("com.example.edgewatch", 1))
else:
    # Passes onnx.checker (which does not infer shapes), but 192 elements cannot be 5 rows.
    nodes = [helper.make_node("Relu", ["x"], ["h"]), helper.make_node("Reshape", ["h", "shape"], ["y"])]
    inits = [numpy_helper.from_array(np.array([5, -1], np.int64), "shape")]
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [5, -1])
model = helper.make_model(helper.make_graph(nodes, kind, [x], [y], inits), opset_imports=opsets)
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, path)
"""


@pytest.fixture(scope="module")
def onnx2tf_env():
    try:
        return require_env()
    except OnnxConversionError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc} (.ci/setup.d/40-onnx2tf.sh should have made it)")
        pytest.skip(str(exc))


def _in_venv(env, script: str, *args: str | Path) -> None:
    proc = subprocess.run([str(env.python), "-c", script, *map(str, args)], env=isolated_environ(env),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.fixture(scope="module")
def real_images(opencv_data: Path, vtest_avi: Path) -> np.ndarray:
    """(N, SIZE, SIZE, 3) float32 RGB in 0..1: four opencv-doc photos and a vtest.avi frame."""
    frames = [cv2.imread(str(opencv_data / name)) for name in PHOTOS]
    capture = cv2.VideoCapture(str(vtest_avi))
    ok, frame = capture.read()
    capture.release()
    assert ok and all(f is not None for f in frames)
    prep = Preprocessor(InputSpec(SIZE, SIZE, color="rgb"), np.float32)
    return np.concatenate([prep(f)[0] for f in [*frames, frame]])


@pytest.fixture(scope="module")
def converted(onnx2tf_env, real_images, tmp_path_factory):
    root = tmp_path_factory.mktemp("onnx")
    onnx_path, images, reference = root / "net.onnx", root / "images.npy", root / "reference.npz"
    np.save(images, real_images)
    _in_venv(onnx2tf_env, BUILD_AND_REFERENCE, onnx_path, images, reference, SIZE)
    digest = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    saved_model = load_onnx(onnx_path, root / "work")
    return onnx_path, digest, saved_model, dict(np.load(reference))


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _expected_nhwc(reference: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    # onnx2tf turns NCHW tensors into NHWC: the 4-D output comes back channels-last, the rest as in ONNX.
    return {"head": reference["head"], "features": reference["features"].transpose(0, 2, 3, 1),
            "embedding": reference["embedding"]}


def _match_by_shape(outputs: list[np.ndarray], expected: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    by_shape = {tuple(v.shape[1:]): k for k, v in expected.items()}
    assert len(by_shape) == len(expected) == len(outputs)
    got = {by_shape[tuple(np.shape(o)[1:])]: np.asarray(o) for o in outputs}
    assert set(got) == set(expected), f"output shapes {[np.shape(o) for o in outputs]}"
    return got


def test_savedmodel_matches_onnxruntime_on_real_images(converted, real_images):
    import tensorflow as tf

    onnx_path, digest, saved_model, reference = converted
    assert (saved_model / "saved_model.pb").is_file()
    assert hashlib.sha256(onnx_path.read_bytes()).hexdigest() == digest, "the source ONNX file was modified"
    assert (saved_model.parent / FILE_NAME).is_file(), "onnx2tf's sample images were not provided locally"

    serve = tf.saved_model.load(str(saved_model)).signatures["serving_default"]
    (spec,) = serve.structured_input_signature[1].values()
    assert spec.shape.as_list() == [1, SIZE, SIZE, 3], "input is not NHWC"
    expected = _expected_nhwc(reference)
    runs = [serve(tf.constant(image[None])) for image in real_images]
    # Signature outputs are output_<i>, i being the ONNX output's index: the core can rely on it.
    keys = sorted(runs[0], key=lambda key: int(key.rsplit("_", 1)[1]))
    assert [np.shape(runs[0][key])[1:] for key in keys] == [want.shape[1:] for want in expected.values()]
    got = _match_by_shape([np.concatenate([run[key] for run in runs]) for key in keys], expected)
    for name, want in expected.items():
        assert got[name].shape == want.shape, name
        assert _cosine(got[name], want) > 0.999, name
        assert np.abs(got[name] - want).max() <= 1e-3 * max(1.0, np.abs(want).max()), name


def test_tflite_from_savedmodel_matches_onnxruntime(converted, real_images):
    """The converter core's path: TFLiteConverter.from_saved_model (TF 2.21), run with LiteRT."""
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    _, _, saved_model, reference = converted
    tflite = tf.lite.TFLiteConverter.from_saved_model(str(saved_model)).convert()
    interpreter = Interpreter(model_content=tflite)
    interpreter.allocate_tensors()
    (inp,) = interpreter.get_input_details()
    assert list(inp["shape"]) == [1, SIZE, SIZE, 3]
    outputs = interpreter.get_output_details()
    runs: list[list[np.ndarray]] = [[] for _ in outputs]
    for image in real_images:
        interpreter.set_tensor(inp["index"], image[None])
        interpreter.invoke()
        for i, out in enumerate(outputs):
            runs[i].append(interpreter.get_tensor(out["index"]).copy())
    expected = _expected_nhwc(reference)
    got = _match_by_shape([np.concatenate(r) for r in runs], expected)
    for name, want in expected.items():
        assert _cosine(got[name], want) > 0.999, name


def test_unreadable_onnx_is_one_line_error_naming_the_file(onnx2tf_env, tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x08\x07this is not a protobuf of a model" * 10)
    with pytest.raises(OnnxConversionError) as info:
        load_onnx(bad, tmp_path / "work")
    message = str(info.value)
    assert str(bad) in message and "not a valid ONNX model" in message and "\n" not in message
    assert info.value.cause == "input"


def test_unsupported_ops_are_all_named(onnx2tf_env, tmp_path):
    model = tmp_path / "custom.onnx"
    _in_venv(onnx2tf_env, UNCONVERTIBLE, "unsupported", model)
    with pytest.raises(OnnxConversionError) as info:
        load_onnx(model, tmp_path / "work")
    message = str(info.value)
    assert message.startswith(f"{model}: unsupported op(s) CastLike, FrobnicateBoxes") and "\n" not in message
    assert info.value.cause == "unsupported_op"


def test_failed_conversion_names_file_node_cause_and_log(onnx2tf_env, tmp_path):
    model = tmp_path / "bad_reshape.onnx"
    _in_venv(onnx2tf_env, UNCONVERTIBLE, "bad_reshape", model)
    with pytest.raises(OnnxConversionError) as info:
        load_onnx(model, tmp_path / "work")
    message = str(info.value)
    assert message.startswith(f"{model}: onnx2tf failed at node ") and "Reshape" in message, message
    assert "divisible" in message and str(tmp_path / "work" / "onnx2tf.log") in message and "\n" not in message
    assert info.value.cause == "conversion"


def test_missing_file_and_missing_env_are_clear(tmp_path, monkeypatch):
    with pytest.raises(OnnxConversionError, match="absent.onnx: no such file") as info:
        load_onnx(tmp_path / "absent.onnx", tmp_path / "work")
    assert info.value.cause == "input"
    model = tmp_path / "m.onnx"
    model.write_bytes(b"")
    monkeypatch.setenv("EDGEWATCH_ONNX2TF_VENV", str(tmp_path / "no-venv"))
    with pytest.raises(OnnxConversionError, match=r"no-venv is missing: create it with: python -m converters.onnx.env --create") as info:
        load_onnx(model, tmp_path / "work")
    assert info.value.cause == "environment"
