"""The embedded default person bundle, as converters/build_assets.py built it (no TensorFlow needed)."""

import json

from runtime.bundle import load_manifest


def test_shipped_person_bundle(person_bundle):
    """The embedded default, as built by converters/build_assets.py and committed."""
    bundle = load_manifest(person_bundle / "model.json")
    assert bundle.default_variant == "int8" and bundle.variant("int8").file.name == "model.tflite"
    assert {"int8", "float32"} <= {v.name for v in bundle.variants}
    report = json.loads((person_bundle / "report.json").read_text())
    by_name = {v["name"]: v for v in report["variants"]}
    assert by_name["float32"]["fidelity"]["value"] >= 0.99
    assert by_name["int8"]["fidelity"]["value"] >= 0.95
    assert by_name["int8"]["size_ratio"] <= 0.32
    assert report["samples"]["held_out"] >= 40
    assert set(report["samples"]["calibration_frames"]).isdisjoint(report["samples"]["held_out_frames"])
    total = sum(p.stat().st_size for p in person_bundle.iterdir())
    assert total < 21e6
