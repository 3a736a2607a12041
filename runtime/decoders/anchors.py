"""SSD anchors: stored in the bundle (anchors.npy) or generated from their parameters.

Canonical layout everywhere: float32 (N, 4) rows of [cy, cx, h, w], normalised to the input, the
convention of TFLite_Detection_PostProcess. Two generators, each a faithful port of its origin:
the TF Object Detection API's multiple-grid generator (`create_ssd_anchors`) and MediaPipe's
`SsdAnchorsCalculator`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..table import Table


def _layer_scale(min_scale: float, max_scale: float, index: int, count: int) -> float:
    if count == 1:
        return (min_scale + max_scale) / 2
    return min_scale + (max_scale - min_scale) * index / (count - 1)


def multiple_grid(
    feature_maps: list[tuple[int, int]],
    min_scale: float = 0.2,
    max_scale: float = 0.95,
    aspect_ratios: tuple[float, ...] = (1.0, 2.0, 0.5, 3.0, 1.0 / 3.0),
    interpolated_scale_aspect_ratio: float = 1.0,
    reduce_boxes_in_lowest_layer: bool = True,
    base_anchor_size: tuple[float, float] = (1.0, 1.0),
) -> np.ndarray:
    """TF OD API `create_ssd_anchors` + `MultipleGridAnchorGenerator`, for (rows, cols) grids."""
    n = len(feature_maps)
    scales = [_layer_scale(min_scale, max_scale, i, n) for i in range(n)] + [1.0]
    out = []
    for layer, (rows, cols) in enumerate(feature_maps):
        scale, scale_next = scales[layer], scales[layer + 1]
        if layer == 0 and reduce_boxes_in_lowest_layer:
            specs = [(0.1, 1.0), (scale, 2.0), (scale, 0.5)]
        else:
            specs = [(scale, ar) for ar in aspect_ratios]
            if interpolated_scale_aspect_ratio > 0:
                specs.append((math.sqrt(scale * scale_next), interpolated_scale_aspect_ratio))
        s = np.array([p[0] for p in specs])
        r = np.sqrt(np.array([p[1] for p in specs]))
        heights = s / r * base_anchor_size[0]
        widths = s * r * base_anchor_size[1]
        cy = (np.arange(rows) + 0.5) / rows
        cx = (np.arange(cols) + 0.5) / cols
        gy, gx, k = np.meshgrid(cy, cx, np.arange(len(specs)), indexing="ij")
        layer_anchors = np.stack([gy, gx, heights[k], widths[k]], axis=-1).reshape(-1, 4)
        out.append(layer_anchors)
    return np.concatenate(out).astype(np.float32)


def mediapipe_ssd(
    input_width: int,
    input_height: int,
    strides: list[int],
    min_scale: float = 0.1484375,
    max_scale: float = 0.75,
    anchor_offset_x: float = 0.5,
    anchor_offset_y: float = 0.5,
    aspect_ratios: tuple[float, ...] = (1.0,),
    interpolated_scale_aspect_ratio: float = 1.0,
    fixed_anchor_size: bool = True,
    reduce_boxes_in_lowest_layer: bool = False,
) -> np.ndarray:
    """MediaPipe `SsdAnchorsCalculator` (as BlazeFace and its kin are configured)."""
    num_layers = len(strides)
    out = []
    layer = 0
    while layer < num_layers:
        heights, widths = [], []
        last = layer
        while last < num_layers and strides[last] == strides[layer]:
            scale = _layer_scale(min_scale, max_scale, last, num_layers)
            if last == 0 and reduce_boxes_in_lowest_layer:
                pairs = [(0.1, 1.0), (scale, 2.0), (scale, 0.5)]
            else:
                pairs = [(scale, ar) for ar in aspect_ratios]
                if interpolated_scale_aspect_ratio > 0:
                    nxt = 1.0 if last == num_layers - 1 else _layer_scale(min_scale, max_scale, last + 1, num_layers)
                    pairs.append((math.sqrt(scale * nxt), interpolated_scale_aspect_ratio))
            for s, ar in pairs:
                heights.append(s / math.sqrt(ar))
                widths.append(s * math.sqrt(ar))
            last += 1
        stride = strides[layer]
        rows = math.ceil(input_height / stride)
        cols = math.ceil(input_width / stride)
        cy = (np.arange(rows) + anchor_offset_y) / rows
        cx = (np.arange(cols) + anchor_offset_x) / cols
        k = len(heights)
        gy, gx, idx = np.meshgrid(cy, cx, np.arange(k), indexing="ij")
        if fixed_anchor_size:
            h = np.ones_like(gy)
            w = np.ones_like(gx)
        else:
            h = np.asarray(heights)[idx]
            w = np.asarray(widths)[idx]
        out.append(np.stack([gy, gx, h, w], axis=-1).reshape(-1, 4))
        layer = last
    return np.concatenate(out).astype(np.float32)


def corners_to_center(corners: np.ndarray) -> np.ndarray:
    """[ymin, xmin, ymax, xmax] (TF OD API BoxList) -> [cy, cx, h, w]."""
    c = np.asarray(corners, np.float32).reshape(-1, 4)
    h = c[:, 2] - c[:, 0]
    w = c[:, 3] - c[:, 1]
    return np.stack([c[:, 0] + h / 2, c[:, 1] + w / 2, h, w], axis=1)


def anchors_from_params(spec: Any, bundle_dir: Path | None, where: str, input_size: tuple[int, int]) -> np.ndarray:
    """The `anchors` decoder parameter: a .npy file name in the bundle, or a generator table."""
    if isinstance(spec, str):
        if bundle_dir is None:
            raise ValueError(f"{where}: output.params.anchors: a file name needs a bundle folder")
        path = bundle_dir / spec
        if "/" in spec or not path.is_file():
            raise ValueError(f"{path}: anchors file missing (output.params.anchors in {where})")
        try:
            anchors = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: not a readable .npy array ({exc})") from None
        if anchors.ndim != 2 or anchors.shape[1] != 4:
            raise ValueError(f"{path}: anchors must be (N, 4) [cy, cx, h, w], got {anchors.shape}")
        return anchors.astype(np.float32)
    t = Table(spec, where, "output.params.anchors")
    kind = t.str("generator", choices=("multiple_grid", "mediapipe_ssd"))
    if kind == "multiple_grid":
        maps = t.list("feature_maps")
        try:
            grids = [(int(a), int(b)) for a, b in maps]
        except (TypeError, ValueError):
            raise t.error("feature_maps", f"must be a list of [rows, cols], got {maps!r}") from None
        anchors = multiple_grid(
            grids,
            min_scale=t.number("min_scale", 0.2, gt=0),
            max_scale=t.number("max_scale", 0.95, gt=0),
            aspect_ratios=tuple(t.numbers("aspect_ratios", [1.0, 2.0, 0.5, 3.0, 1.0 / 3.0])),
            interpolated_scale_aspect_ratio=t.number("interpolated_scale_aspect_ratio", 1.0),
            reduce_boxes_in_lowest_layer=t.bool("reduce_boxes_in_lowest_layer", True),
            base_anchor_size=tuple(t.numbers("base_anchor_size", [1.0, 1.0], length=2)),
        )
    else:
        strides = [int(s) for s in t.numbers("strides")]
        anchors = mediapipe_ssd(
            input_width=t.number("input_width", input_size[0], integer=True, gt=0),
            input_height=t.number("input_height", input_size[1], integer=True, gt=0),
            strides=strides,
            min_scale=t.number("min_scale", 0.1484375, gt=0),
            max_scale=t.number("max_scale", 0.75, gt=0),
            anchor_offset_x=t.number("anchor_offset_x", 0.5),
            anchor_offset_y=t.number("anchor_offset_y", 0.5),
            aspect_ratios=tuple(t.numbers("aspect_ratios", [1.0])),
            interpolated_scale_aspect_ratio=t.number("interpolated_scale_aspect_ratio", 1.0),
            fixed_anchor_size=t.bool("fixed_anchor_size", True),
            reduce_boxes_in_lowest_layer=t.bool("reduce_boxes_in_lowest_layer", False),
        )
    t.done()
    return anchors
