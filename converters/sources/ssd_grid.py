"""SSD anchors as grids: read from a source's own anchors, regenerated for other feature maps.

An SSD lays its anchors out per feature map: a grid of cells (centres at (i + 0.5) / rows and
(j + 0.5) / cols) and, in every cell, the same few box shapes. At another input size the grids are
the ones that size produces, and each box keeps its size in pixels: the network's features and
box regressions are tied to pixels (its receptive fields, its training size), so in the normalised
coordinates of a smaller input an anchor is larger by the ratio of the two sizes. Measured on the
person detector at 224: anchors kept at their normalised size give boxes about 0.75x the source's
(IoU 0.36-0.58 with its boxes on a vtest frame), anchors kept in pixels IoU 0.65-0.79. The layout
is checked against the source's anchors, not assumed: anchors that do not follow it cannot be
regenerated, and the caller is told why.

When the shapes are those of the TF OD API's multiple-grid generator (`create_ssd_anchors`), its
parameters are recovered, so a variant's manifest can say `{"generator": "multiple_grid", ...}`
and the board generates the anchors itself (runtime/decoders/anchors.py); otherwise the converter
writes the regenerated anchors as a file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from runtime.decoders.anchors import multiple_grid

# Anchors from a graph are float32 arithmetic; ours float64. The same layout agrees to ~1e-4.
TOLERANCE = 2e-4


class GridError(ValueError):
    """The anchors do not follow a per-feature-map grid layout (one line: why)."""


@dataclass(frozen=True)
class AnchorGrid:
    """Per feature map: (rows, cols) and the (h, w) of the boxes every cell holds, in order."""

    feature_maps: list[tuple[int, int]]
    shapes: list[np.ndarray]  # per layer (k, 2): [h, w]

    def anchors(self, feature_maps: list[tuple[int, int]], scale: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
        """The same box shapes on other grids, heights and widths times `scale` (the source's input
        height and width over the new ones): (N, 4) float32 [cy, cx, h, w]."""
        if len(feature_maps) != len(self.shapes):
            raise GridError(f"{len(feature_maps)} feature maps for an anchor layout of {len(self.shapes)}")
        out = []
        for (rows, cols), layer in zip(feature_maps, self.shapes):
            shapes = layer * np.asarray(scale, np.float64)
            cy = (np.arange(rows) + 0.5) / rows
            cx = (np.arange(cols) + 0.5) / cols
            gy, gx, k = np.meshgrid(cy, cx, np.arange(len(shapes)), indexing="ij")
            out.append(np.stack([gy, gx, shapes[k, 0], shapes[k, 1]], axis=-1).reshape(-1, 4))
        return np.concatenate(out).astype(np.float32)


def read_grid(anchors: np.ndarray, layers: list[tuple[int, int, int]]) -> AnchorGrid:
    """The layout of `anchors` (N, 4) [cy, cx, h, w], given per layer (rows, cols, boxes per cell)
    as the model's own feature maps say. Raises GridError when they do not line up."""
    total = sum(r * c * k for r, c, k in layers)
    if total != len(anchors):
        raise GridError(f"the feature maps {[(r, c) for r, c, _ in layers]} hold {total} boxes, the anchors {len(anchors)}")
    start = 0
    shapes = []
    for i, (rows, cols, k) in enumerate(layers):
        block = anchors[start : start + rows * cols * k].reshape(rows, cols, k, 4).astype(np.float64)
        start += rows * cols * k
        cy = (np.arange(rows) + 0.5) / rows
        cx = (np.arange(cols) + 0.5) / cols
        if np.abs(block[..., 0] - cy[:, None, None]).max() > TOLERANCE or np.abs(block[..., 1] - cx[None, :, None]).max() > TOLERANCE:
            raise GridError(f"layer {i}: anchor centres are not a {rows}x{cols} grid of cell centres")
        hw = block[0, 0, :, 2:]
        if np.abs(block[..., 2:] - hw).max() > TOLERANCE:
            raise GridError(f"layer {i}: box shapes differ between cells")
        shapes.append(hw)
    return AnchorGrid([(r, c) for r, c, _ in layers], shapes)


def multiple_grid_params(grid: AnchorGrid) -> dict | None:
    """The TF OD API multiple-grid parameters that generate `grid`'s anchors, or None if none do.

    Read from the shapes themselves: scale = sqrt(h * w) and aspect ratio = w / h per box; the
    lowest layer either reduced to (0.1, 1), (s, 2), (s, 1/2) or like the others; the last box of a
    layer the interpolated scale sqrt(s_i * s_i+1). Then checked by generating them again.
    """
    n = len(grid.shapes)
    if n < 2:
        return None
    scale = [np.sqrt(s[:, 0] * s[:, 1]) for s in grid.shapes]
    ratio = [s[:, 1] / s[:, 0] for s in grid.shapes]
    upper = grid.shapes[1]
    if len(upper) < 2:
        return None
    aspect = [round(float(r), 6) for r in ratio[1][:-1]]
    interpolated = round(float(ratio[1][-1]), 6)
    reduced = len(grid.shapes[0]) == 3 and abs(scale[0][0] - 0.1) < TOLERANCE
    min_scale = float(scale[0][1] if reduced else scale[0][0])
    max_scale = float(scale[-1][0])
    params = {
        "min_scale": round(min_scale, 6),
        "max_scale": round(max_scale, 6),
        "aspect_ratios": aspect,
        "interpolated_scale_aspect_ratio": interpolated,
        "reduce_boxes_in_lowest_layer": bool(reduced),
    }
    try:
        again = multiple_grid(grid.feature_maps, **params)
    except (ValueError, IndexError):
        return None
    if again.shape != grid.anchors(grid.feature_maps).shape:
        return None
    if np.abs(again - grid.anchors(grid.feature_maps)).max() > TOLERANCE:
        return None
    return params


def generator_table(params: dict, feature_maps: list[tuple[int, int]], scale: tuple[float, float] = (1.0, 1.0)) -> dict:
    """The manifest's `anchors` parameter that makes the board generate them (anchors_from_params);
    `scale` (height, width) is the generator's base anchor size."""
    return {"generator": "multiple_grid", "feature_maps": [[int(r), int(c)] for r, c in feature_maps], **params,
            "base_anchor_size": [round(float(scale[0]), 6), round(float(scale[1]), 6)]}

