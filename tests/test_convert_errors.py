"""Bad input and failed conversions: one line naming the file and the cause, the right exit code,
and an existing bundle at the target left exactly as it was."""

import pytest

from runtime import exitcodes
from runtime.cli import main

pytestmark = pytest.mark.convert
tf = pytest.importorskip("tensorflow")


@pytest.fixture
def existing(tmp_path):
    target = tmp_path / "bundle"
    target.mkdir()
    (target / "model.json").write_text('{"schema_version": 1}')
    (target / "model.tflite").write_bytes(b"the previous model")
    return target


def run(capsys, *argv):
    code = main(["convert", *map(str, argv), "--quiet"])
    err = capsys.readouterr().err.strip()
    return code, err


def assert_untouched(target):
    assert sorted(p.name for p in target.iterdir()) == ["model.json", "model.tflite"]
    assert (target / "model.tflite").read_bytes() == b"the previous model"
    assert [p.name for p in target.parent.iterdir() if p.name.startswith(".")] == []


def test_missing_model(tmp_path, existing, vtest_avi, capsys):
    code, err = run(capsys, tmp_path / "nope.pb", "-o", existing, "--calibration", vtest_avi)
    assert code == exitcodes.BAD_INPUT
    assert err == f"edgewatch convert: error: {tmp_path / 'nope.pb'}: no such file or folder"
    assert_untouched(existing)


def test_unreadable_graph(tmp_path, existing, vtest_avi, capsys):
    bad = tmp_path / "garbage.pb"
    bad.write_bytes(b"\xff\x00 this is not a protobuf \x01" * 10)
    code, err = run(capsys, bad, "-o", existing, "--calibration", vtest_avi)
    assert code == exitcodes.BAD_INPUT
    assert f"{bad}: not a TensorFlow frozen graph" in err and "\n" not in err
    assert_untouched(existing)


def test_unsupported_model_type(tmp_path, existing, vtest_avi, capsys):
    bad = tmp_path / "model.caffemodel"
    bad.write_bytes(b"x")
    code, err = run(capsys, bad, "-o", existing, "--calibration", vtest_avi)
    assert code == exitcodes.BAD_INPUT and "unsupported model type '.caffemodel'" in err
    assert_untouched(existing)


def test_missing_calibration_folder(ssdlite_graph, tmp_path, existing, capsys):
    code, err = run(capsys, ssdlite_graph, "-o", existing, "--calibration", tmp_path / "frames")
    assert code == exitcodes.BAD_INPUT
    assert err == f"edgewatch convert: error: {tmp_path / 'frames'}: calibration folder or video not found"
    assert_untouched(existing)


def test_unsupported_op_fails_the_conversion(tmp_path, existing, opencv_data, capsys):
    """A frozen graph with an op that has no builtin TFLite kernel (SVD): exit 3, the op named."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    fn = tf.function(lambda x: tf.linalg.svd(tf.reshape(x, [1, 96, 32]), compute_uv=False)).get_concrete_function(
        tf.TensorSpec([1, 32, 32, 3], tf.float32, name="image"))
    frozen = convert_variables_to_constants_v2(fn)
    source = tmp_path / "svd.pb"
    source.write_bytes(frozen.graph.as_graph_def().SerializeToString())
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("baboon.jpg", "fruits.jpg", "messi5.jpg"):
        (photos / name).write_bytes((opencv_data / name).read_bytes())
    code, err = run(capsys, source, "-o", existing, "--calibration", photos, "--samples", "1", "--held-out", "1",
                    "--inputs", "image", "--outputs", frozen.outputs[0].name, "--quantize", "none")
    assert code == exitcodes.CONVERSION_FAILED
    assert err == f"edgewatch convert: error: {source}: none conversion failed: unsupported op(s), no builtin TFLite kernel: Svd"
    assert_untouched(existing)


def test_refuses_to_replace_a_folder_that_is_not_a_bundle(tmp_path, vtest_avi, capsys):
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("mine")
    code, err = run(capsys, tmp_path / "model.keras", "-o", work, "--calibration", vtest_avi)
    assert code == exitcodes.BAD_INPUT
    assert err == f"edgewatch convert: error: {work}: exists and is not a bundle (no model.json); not replacing it"
    assert (work / "notes.txt").read_text() == "mine"
