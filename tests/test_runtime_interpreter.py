"""Model validation: refuse bad files with one line, never crash the process."""

import subprocess
import sys

import pytest

from runtime.interpreter import BACKENDS, Model, ModelError, load_backend
from conftest import WAIT_S

pytestmark = pytest.mark.board  # runs on the emulated arm64 root too (deploy/arm64/check.py)


def test_backend_is_the_first_installed_in_order_of_preference():
    import importlib.util

    installed = [b for b in BACKENDS if importlib.util.find_spec(b.split(".")[0]) is not None]
    assert load_backend().name == installed[0]
    if installed[0] != "ai_edge_litert":  # e.g. a Bookworm board on tflite-runtime
        assert importlib.util.find_spec("ai_edge_litert") is None


@pytest.mark.parametrize("variant", ["model.tflite", "model-float32.tflite", "model-int8-postprocess.tflite"])
def test_xnnpack_runs_the_bundled_model(person_bundle, variant, caplog):
    """What a board runs: XNNPACK, for float and int8 alike, except int8 on tflite-runtime 2.14, whose
    XNNPACK takes float graphs only: then it says so. XNNPACK is applied silently or not at all
    (under qemu without a board's /proc/cpuinfo it was not), so this holds wherever the suite runs."""
    model = Model(person_bundle / variant, threads=1)
    expected = load_backend().name != "tflite_runtime" or variant == "model-float32.tflite"
    assert model.xnnpack == expected
    assert model.engine == f"{model.backend.name} {model.backend.version} {'XNNPACK' if expected else 'TFLite kernels'}"
    warned = [r.getMessage() for r in caplog.records if "XNNPACK not applied" in r.getMessage()]
    assert len(warned) == (0 if expected else 1) and all(str(person_bundle / variant) in w for w in warned)


def test_not_a_model(tmp_path, opencv_data):
    with pytest.raises(ModelError, match="not a TFLite model"):
        Model(opencv_data / "messi5.jpg")
    empty = tmp_path / "empty.tflite"
    empty.write_bytes(b"")
    with pytest.raises(ModelError, match="only 0 bytes"):
        Model(empty)
    with pytest.raises(ModelError, match="no such file"):
        Model(tmp_path / "nope.tflite")
    with pytest.raises(ModelError, match="is a folder"):
        Model(tmp_path)


def test_every_truncation_is_refused_cleanly(tmp_path, blazeface_tflite):
    data = blazeface_tflite.read_bytes()
    for cut in list(range(16, 4096, 97)) + [len(data) // 3, len(data) // 2, len(data) - 4096, len(data) - 1]:
        path = tmp_path / "cut.tflite"
        path.write_bytes(data[:cut])
        with pytest.raises(ModelError) as err:
            Model(path)
        assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_corrupt_body_does_not_crash_the_process(tmp_path, blazeface_tflite):
    """Flipped bytes in the middle: an error or a model, but never a dead process."""
    code = (
        "import sys\nfrom runtime.interpreter import Model, ModelError\n"
        "data = bytearray(open(sys.argv[1], 'rb').read())\n"
        "for i in range(64, 4096, 64): data[i] ^= 0xFF\n"
        "open(sys.argv[2], 'wb').write(data)\n"
        "try:\n    Model(sys.argv[2])\nexcept ModelError as e:\n    print('refused', e)\nelse:\n    print('loaded')\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(blazeface_tflite), str(tmp_path / "x.tflite")], capture_output=True, text=True, timeout=WAIT_S)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith(("refused", "loaded"))


@pytest.mark.convert
def test_input_that_is_not_an_image(tmp_path):
    tf = pytest.importorskip("tensorflow")

    @tf.function(input_signature=[tf.TensorSpec([1, 10], tf.float32)])
    def f(x):
        return {"y": x * 2.0}

    conv = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], f)
    path = tmp_path / "vector.tflite"
    path.write_bytes(conv.convert())
    with pytest.raises(ModelError, match=r"has shape \[1, 10\]; expected an image"):
        Model(path)


def test_runtime_never_imports_tensorflow(blazeface_bundle, opencv_data):
    code = (
        "import sys, cv2\nfrom runtime.detector import Detector, DetectorOptions\nimport runtime.cli\n"
        "d = Detector.create_from_options(DetectorOptions(sys.argv[1]))\nd.detect(cv2.imread(sys.argv[2]))\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'converters', 'keras')]\n"
        "print(bad)\nsys.exit(1 if bad else 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(blazeface_bundle), str(opencv_data / "messi5.jpg")], capture_output=True, text=True, timeout=WAIT_S)
    assert out.returncode == 0, out.stdout + out.stderr[-2000:]
