"""The manifest: a versioned schema, and errors that name the field."""

import json
import shutil

import pytest

from runtime.bundle import BundleError, load_manifest
from runtime.detector import Detector, DetectorOptions
from runtime.decoders import DecoderError

pytestmark = pytest.mark.board  # runs on the emulated arm64 root too (deploy/arm64/check.py)


def write(folder, manifest):
    (folder / "model.json").write_text(json.dumps(manifest))
    return folder / "model.json"


@pytest.fixture
def manifest(blazeface_bundle):
    return json.loads((blazeface_bundle / "model.json").read_text())


def test_loads(blazeface_bundle):
    b = load_manifest(blazeface_bundle / "model.json")
    assert b.decoder == "ssd_anchors" and b.labels == ["face"]
    assert b.input.mean == (127.5,) * 3 and b.input.std == (127.5,) * 3  # range [-1, 1]
    assert [v.name for v in b.variants] == ["default"]


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m.pop("schema_version"), "schema_version: is required"),
        (lambda m: m.update(schema_version=9), "schema_version: 9 is not supported"),
        (lambda m: m["input"].pop("width"), "input.width: is required"),
        (lambda m: m["input"].update(width=-3), "input.width: must be > 0"),
        (lambda m: m["input"].update(color="cmyk"), "input.color: 'cmyk' is not one of"),
        (lambda m: m["input"].update(resize="crop"), "input.resize: 'crop' is not one of"),
        (lambda m: m["input"].update(colour="rgb"), "input.colour: unknown key"),
        (lambda m: m["input"]["normalization"].update(mean=[1, 2, 3]), "give either range or mean/std"),
        (lambda m: m["input"].update(normalization={"std": [1, 0, 1]}), "input.normalization.std: must not contain 0"),
        (lambda m: m["output"].pop("decoder"), "output.decoder: is required"),
        (lambda m: m.update(variants=[{"name": "int8", "file": "missing.tflite"}]), "missing.tflite: missing"),
        (lambda m: m.update(variants=[{"name": "x", "file": "../model.tflite"}]), "variants[0].file: must be a file name inside the bundle"),
        (lambda m: m.update(default_variant="fp16"), "default_variant: 'fp16' is not a variant name"),
        (lambda m: m.update(labels="face"), "labels: must be a list"),
    ],
)
def test_bad_manifest_names_the_field(blazeface_bundle, manifest, edit, message):
    edit(manifest)
    path = write(blazeface_bundle, manifest)
    with pytest.raises(BundleError) as err:
        load_manifest(path)
    text = str(err.value)
    assert message in text and "\n" not in text
    assert str(blazeface_bundle) in text


def test_not_json(blazeface_bundle):
    (blazeface_bundle / "model.json").write_text("{ nope")
    with pytest.raises(BundleError, match="model.json: not valid JSON"):
        load_manifest(blazeface_bundle / "model.json")


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m["output"].update(decoder="retinanet"), "output.decoder: 'retinanet' is not one of"),
        (lambda m: m["output"]["params"].update(coder="yolo"), "output.params.coder"),
        (lambda m: m["output"]["params"]["anchors"].update(strides=[8, 16]), "anchors but the model has 896 boxes"),
        (lambda m: m["output"]["params"].update(nms={"method": "soft"}), "output.params.nms.method"),
        (lambda m: m["output"]["params"].update(boxes="nope"), "no output named 'nope'"),
        (lambda m: m["output"]["params"].update(anchros=[]), "output.params.anchros: unknown key"),
        (lambda m: m["input"].update(width=256, height=256), "input is 256x256 but model.tflite takes 128x128"),
    ],
)
def test_decoder_params_checked_against_the_model(blazeface_bundle, manifest, edit, message):
    edit(manifest)
    write(blazeface_bundle, manifest)
    with pytest.raises((BundleError, DecoderError)) as err:
        Detector.create_from_options(DetectorOptions(blazeface_bundle))
    assert message in str(err.value)


def test_variants_and_overrides(blazeface_bundle, manifest, astronaut_bgr):
    shutil.copy(blazeface_bundle / "model.tflite", blazeface_bundle / "strict.tflite")
    manifest["variants"] = [
        {"name": "normal", "file": "model.tflite", "quantization": "none", "metrics": {"latency_ms": 1.0}},
        {"name": "strict", "file": "strict.tflite", "output": {"params": {"score_threshold": 0.99}}},
    ]
    manifest["default_variant"] = "normal"
    write(blazeface_bundle, manifest)
    assert len(Detector.create_from_options(DetectorOptions(blazeface_bundle)).detect(astronaut_bgr)) == 1
    strict = Detector.create_from_options(DetectorOptions(blazeface_bundle, variant="strict"))
    assert strict.variant.name == "strict" and len(strict.detect(astronaut_bgr)) == 0
    with pytest.raises(BundleError, match="no variant 'fp16'"):
        Detector.create_from_options(DetectorOptions(blazeface_bundle, variant="fp16"))


def test_bare_tflite_that_is_not_recognisable_says_what_is_missing(tmp_path, blazeface_tflite):
    shutil.copy(blazeface_tflite, tmp_path / "face.tflite")
    with pytest.raises(BundleError) as err:
        Detector.create_from_options(DetectorOptions(tmp_path / "face.tflite"))
    assert "no model.json" in str(err.value) and "regressors [1, 896, 16]" in str(err.value)
