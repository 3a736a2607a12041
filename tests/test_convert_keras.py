"""Non-detector sources: a tiny Keras model trained here, as .keras, .h5, SavedModel and frozen graph.

Fidelity for these is cosine similarity and SNR of the outputs against the source model's own
outputs on held-out images that calibration never saw. One conversion per source format, shared.
"""

import contextlib
import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from runtime import exitcodes
from runtime.bundle import load_manifest
from runtime.cli import main
from conftest import WAIT_S

pytestmark = pytest.mark.convert
tf = pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A folder of real photos (scikit-image's), cropped to 64x64 tiles: 12 images."""
    from skimage import data

    folder = tmp_path_factory.mktemp("photos")
    n = 0
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        bgr = cv2.cvtColor(getattr(data, name)(), cv2.COLOR_RGB2BGR)
        h, w = bgr.shape[:2]
        for k in range(3):
            y, x = (h - 64) * k // 2, (w - 64) * (2 - k) // 2
            cv2.imwrite(str(folder / f"{n:02d}-{name}.png"), bgr[y : y + 64, x : x + 64])
            n += 1
    return folder


@pytest.fixture(scope="module")
def tiny_model(photos, tmp_path_factory):
    """A small conv net trained for a few seconds to predict a tile's mean colour and contrast."""
    keras = tf.keras
    x = np.stack([cv2.resize(cv2.imread(str(p))[:, :, ::-1], (32, 32)) for p in sorted(photos.iterdir())]).astype(np.float32) / 255.0
    y = np.concatenate([x.mean(axis=(1, 2)), x.std(axis=(1, 2, 3))[:, None]], axis=1)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    features = keras.layers.Conv2D(16, 3, activation="relu")(keras.layers.MaxPooling2D()(keras.layers.Conv2D(8, 3, activation="relu")(inputs)))
    colour = keras.layers.Dense(4)(keras.layers.GlobalAveragePooling2D()(features))
    # two outputs, so the converted outputs must be matched to the source's, not taken in order
    model = keras.Model(inputs, [colour, features])
    model.compile(optimizer="adam", loss=["mse", None])
    model.fit(x, y, epochs=20, batch_size=4, verbose=0)
    folder = tmp_path_factory.mktemp("tiny")
    model.save(folder / "tiny.keras")
    return model, folder


def convert(capsys, source, out, calibration, *extra):
    capsys.readouterr()  # drop what the test printed before (Keras' export prints to stdout)
    code = main(["convert", str(source), "-o", str(out), "--calibration", str(calibration), "--samples", "4",
                 "--held-out", "4", "--runs", "3", "--input-size", "32x32", "--quiet", "--json", *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def keras_report(tiny_model, photos, tmp_path_factory):
    _, folder = tiny_model
    out = tmp_path_factory.mktemp("bundles") / "tiny"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["convert", str(folder / "tiny.keras"), "-o", str(out), "--calibration", str(photos), "--samples", "4",
                     "--held-out", "4", "--runs", "3", "--quiet", "--json", "--quantize", "int8,float16,dynamic,none",
                     "--io-type", "float"])
    assert code == exitcodes.OK
    return json.loads(buf.getvalue()), out


def test_keras_variants_report_cosine_and_snr(keras_report):
    report, out = keras_report
    by_name = {v["name"]: v for v in report["variants"]}
    assert list(by_name) == ["int8", "float16", "dynamic", "float32"]
    assert "pruning" not in report  # without --prune, nothing of it
    for v in by_name.values():
        assert v["fidelity"]["metric"] == "cosine"
        assert {"size_bytes", "size_ratio", "latency_ms", "threads", "quantization"} <= set(v)
    assert by_name["float32"]["fidelity"]["value"] > 0.99999
    assert by_name["float16"]["fidelity"]["value"] > 0.9999
    assert by_name["int8"]["fidelity"]["value"] > 0.95
    assert by_name["float32"]["fidelity"]["snr_db"] is None or by_name["float32"]["fidelity"]["snr_db"] > 60
    assert by_name["int8"]["fidelity"]["snr_db"] < by_name["float16"]["fidelity"]["snr_db"] or by_name["float16"]["fidelity"]["snr_db"] is None
    assert by_name["float32"]["size_ratio"] == 1.0
    assert isinstance(by_name["int8"]["float_ops"], dict)
    bundle = load_manifest(out / "model.json")
    assert bundle.default_variant == "int8" and bundle.decoder == "raw"
    assert (bundle.input.width, bundle.input.height) == (32, 32)
    assert json.loads((out / "report.json").read_text())["variants"] == report["variants"]


def test_int8_float_io_matches_keras_on_a_photo(keras_report, tiny_model, photos):
    """Independent of the report: run the int8 file by hand against Keras on one held-out tile."""
    from runtime.interpreter import Model
    from runtime.preprocess import Preprocessor

    model, _ = tiny_model
    _, out = keras_report
    bundle = load_manifest(out / "model.json")
    tflite = Model(bundle.variant("int8").file, threads=1)
    frame = cv2.imread(str(sorted(photos.iterdir())[1]))
    tensor, _ = Preprocessor(bundle.input, tflite.input.dtype, tflite.input.quantization)(frame)
    tflite.set_input(tensor)
    tflite.invoke()
    (colour,) = [o for o in tflite.outputs if o.shape == (1, 4)]
    got = colour.dequantize(tflite.output(colour))
    want = model(Preprocessor(bundle.input, np.float32)(frame)[0])[0].numpy()
    assert np.abs(got - want).max() < 0.05 * np.abs(want).max() + 0.02


@pytest.mark.parametrize("fmt", ["h5", "saved_model", "frozen_graph"])
def test_other_source_formats(fmt, tiny_model, photos, tmp_path, capsys):
    model, _ = tiny_model
    extra = ["--quantize", "none"]
    if fmt == "h5":
        source = tmp_path / "tiny.h5"
        model.save(source)
    elif fmt == "saved_model":
        source = tmp_path / "saved"
        model.export(source)
    else:
        from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

        fn = tf.function(lambda x: model(x)).get_concrete_function(tf.TensorSpec([1, 32, 32, 3], tf.float32, name="image"))
        frozen = convert_variables_to_constants_v2(fn)
        source = tmp_path / "tiny.pb"
        source.write_bytes(frozen.graph.as_graph_def().SerializeToString())
        extra += ["--inputs", "image", "--outputs", ",".join(o.name for o in frozen.outputs)]
    code, out, err = convert(capsys, source, tmp_path / "bundle", photos, *extra)
    assert code == exitcodes.OK, err
    report = json.loads(out)
    (v,) = report["variants"]
    assert v["fidelity"]["metric"] == "cosine" and v["fidelity"]["value"] > 0.99999


def test_fidelity_gate_exits_4_and_keeps_the_bundle(tiny_model, photos, tmp_path, capsys):
    _, folder = tiny_model
    code, out, err = convert(capsys, folder / "tiny.keras", tmp_path / "gated", photos, "--min-fidelity", "1.01", "--quantize", "int8")
    assert code == exitcodes.FIDELITY_GATE
    assert "below 1.01: int8" in err
    assert (tmp_path / "gated" / "model.tflite").is_file()


def test_report_command_table_json_and_plot(keras_report, tmp_path, capsys):
    _, out = keras_report
    assert main(["report", str(out)]) == exitcodes.OK
    table = capsys.readouterr().out
    assert "cosine" in table and "float16" in table
    png = tmp_path / "tradeoff.png"
    assert main(["report", str(out), "--plot", str(png)]) == exitcodes.OK
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["report", str(tmp_path)]) == exitcodes.BAD_INPUT
    assert "report.json: no such file" in capsys.readouterr().err


def convert_terminated_at(args: list[str], marker: str) -> tuple[list[str], str, int]:
    """`edgewatch ARGS` in a process of its own, its stderr a pipe (as over ssh without a TTY),
    sent SIGTERM once a progress line holds `marker`: (the lines up to then, all of stderr, exit code)."""
    import os
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "runtime.cli", *args], cwd=Path(__file__).resolve().parents[1],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if marker in line:
            proc.send_signal(signal.SIGTERM)
            break
    err = "".join(lines) + proc.stderr.read()
    return lines, err, proc.wait(timeout=WAIT_S)


def previous_bundle(tmp_path) -> Path:
    """A bundle folder from an earlier conversion, which an interrupted one must leave as it is."""
    target = tmp_path / "bundle"
    target.mkdir()
    (target / "model.json").write_text("{}")
    (target / "model.tflite").write_bytes(b"previous")
    return target


def test_headless_run_killed_mid_conversion_leaves_the_old_bundle(tiny_model, photos, tmp_path):
    """As over ssh without a TTY: plain progress lines on a pipe; SIGTERM mid-way exits 130 and
    leaves the existing bundle as it was, with no temporary folder behind."""
    _, folder = tiny_model
    target = previous_bundle(tmp_path)
    lines, err, code = convert_terminated_at(["convert", str(folder / "tiny.keras"), "-o", str(target), "--calibration", str(photos),
                                              "--samples", "4", "--held-out", "4", "--quantize", "none,float16,dynamic,int8"], "converting")
    assert code == exitcodes.INTERRUPTED, err
    assert "\r" not in err and any(line.startswith("[") and "loading" in line for line in lines)
    assert err.strip().splitlines()[-1] == f"edgewatch convert: error: interrupted by SIGTERM; nothing written, {target} unchanged"
    assert sorted(p.name for p in target.iterdir()) == ["model.json", "model.tflite"]
    assert (target / "model.tflite").read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]
