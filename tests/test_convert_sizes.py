"""Input-size variants without TensorFlow: the anchor layout read off a model's anchors and laid on
other feature maps, the sizes a conversion refuses (and why), and the frontier of a report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from converters.frontier import mark
from converters.sizes import parse_size, plan_sizes, size_name
from converters.sources.base import SizeError, SourceModel
from converters.sources.ssd_grid import AnchorGrid, GridError, multiple_grid_params, read_grid
from runtime.decoders.anchors import multiple_grid
from runtime.preprocess import InputSpec

SSDLITE_300 = [(19, 19), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)]
LAYERS_300 = [(r, c, 3 if i == 0 else 6) for i, (r, c) in enumerate(SSDLITE_300)]


def test_the_bundled_anchors_follow_the_multiple_grid_layout(person_bundle):
    anchors = np.load(person_bundle / "anchors.npy")
    grid = read_grid(anchors, LAYERS_300)
    params = multiple_grid_params(grid)
    assert params is not None and params["min_scale"] == pytest.approx(0.2) and params["max_scale"] == pytest.approx(0.95)
    maps_224 = [(14, 14), (7, 7), (4, 4), (2, 2), (1, 1), (1, 1)]
    scale = (300 / 224, 300 / 224)  # kept in pixels: larger in a smaller input's coordinates
    np.testing.assert_allclose(grid.anchors(maps_224, scale), multiple_grid(maps_224, **params, base_anchor_size=scale), atol=2e-4)
    assert len(grid.anchors(maps_224)) == 1014
    np.testing.assert_allclose(grid.anchors(maps_224, scale)[:, 2:], grid.anchors(maps_224)[:, 2:] * 300 / 224, rtol=1e-6)


def test_anchors_that_are_not_a_grid_are_refused_with_why(person_bundle):
    anchors = np.load(person_bundle / "anchors.npy").copy()
    with pytest.raises(GridError, match="hold 1917 boxes, the anchors 1916"):
        read_grid(anchors[:-1], LAYERS_300)
    anchors[5, 0] += 0.01  # one centre off its cell
    with pytest.raises(GridError, match="layer 0: anchor centres are not a 19x19 grid"):
        read_grid(anchors, LAYERS_300)


def test_custom_box_shapes_regenerate_without_the_generator():
    """Anchors whose shapes no multiple-grid parameters give: still regenerated (the converter then
    writes them as a file)."""
    rng = np.random.default_rng(0)
    shapes = [rng.uniform(0.05, 0.9, (4, 2)), rng.uniform(0.05, 0.9, (4, 2))]
    anchors = AnchorGrid([(8, 8), (4, 4)], shapes).anchors([(8, 8), (4, 4)])
    grid = read_grid(anchors, [(8, 8, 4), (4, 4, 4)])
    assert multiple_grid_params(grid) is None
    smaller = grid.anchors([(6, 6), (3, 3)])
    assert smaller.shape == ((36 + 9) * 4, 4)
    np.testing.assert_allclose(smaller[:4, 2:], shapes[0], atol=1e-6)
    np.testing.assert_allclose(smaller[:4, :2], [[1 / 12, 1 / 12]] * 4, atol=1e-6)


def test_sizes_parse_and_name():
    assert parse_size("224") == (224, 224) and parse_size("320x240") == (320, 240)
    for bad in ("0", "x", "224x", "-5"):
        with pytest.raises(ValueError):
            parse_size(bad)
    assert size_name("int8", (224, 224)) == "int8-224" and size_name("float32", (320, 240)) == "float32-320x240"


def _source(resized=None, fixed="the model's input is fixed at 128x128") -> SourceModel:
    return SourceModel(Path("/models/m.keras"), "keras", None, None, InputSpec(128, 128), ["out"], resized=resized, fixed_size=fixed)


def test_a_size_that_cannot_be_made_is_reported_with_why():
    plan = plan_sizes(_source(), [(128, 128), (96, 96)])
    assert list(plan.built) == [(128, 128)]
    assert plan.refused == {(96, 96): "m.keras: the model's input is fixed at 128x128"}
    assert plan.report()[1] == {"size": [96, 96], "built": False, "why": "m.keras: the model's input is fixed at 128x128"}

    def resized(w, h):
        if w < 64:
            raise SizeError(f"the network does not run at {w}x{h}")
        return _source()

    plan = plan_sizes(_source(resized), [(96, 96), (32, 32)])
    assert list(plan.built) == [(128, 128), (96, 96)] and "does not run at 32x32" in plan.refused[(32, 32)]


def test_the_frontier_marks_dominated_variants():
    rows = [
        {"name": "float32", "latency_ms": 20.0, "size_bytes": 12, "peak_rss_mb": 120, "fidelity": {"value": 0.999}},
        {"name": "int8", "latency_ms": 21.0, "size_bytes": 4, "peak_rss_mb": 90, "fidelity": {"value": 0.99}},
        {"name": "int8-224", "latency_ms": 12.0, "size_bytes": 4, "peak_rss_mb": 80, "fidelity": {"value": 0.93}},
        {"name": "broken", "latency_ms": 1.0, "size_bytes": 1, "peak_rss_mb": 1, "fidelity": {"value": None}},
    ]
    mark(rows)
    by = {r["name"]: r["dominated_by"] for r in rows}
    assert by["int8"]["latency"] == "float32"  # slower here and less accurate: no step to take
    assert by["int8"]["size"] is None and by["int8"]["memory"] is None
    assert by["int8-224"] == {"latency": None, "size": "int8", "memory": None}
    assert by["float32"] == {"latency": None, "size": None, "memory": None}
    assert by["broken"] == {"latency": None, "size": None, "memory": None}  # unmeasured: not compared
