"""The motion mask: regions of the frame where motion is ignored (a tree in the wind, a road
with cars, a clock on a wall).

A mask file is either
- an image (PNG, BMP, JPEG, PGM...) of the camera's view at any size, stretched to the frame:
  black (below mid-grey) is ignored, anything lighter is watched; or
- a JSON file (`.json`) holding a list of polygons to ignore, each a list of at least three
  [x, y] points in fractions of the frame (0..1), the same convention as `detect.zones`:
  `[[[0.0, 0.0], [0.3, 0.0], [0.3, 0.4], [0.0, 0.4]]]`.

A small-frame pixel is watched only if all of it is watched, so motion inside an ignored region
cannot leak through its border. The mask hides motion only: an object inside it is still
detected whenever motion elsewhere (or a live track, or the keep-alive) runs the model.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

RENDER_SCALE = 8  # polygons are drawn this many times finer than the small frame, then reduced


class MaskError(ValueError):
    """A mask file that cannot be used; str() is one line naming the file."""


class MotionMask:
    """Where motion is watched, at any frame size. Build with `load_mask`, or from an array or
    polygons directly (tests, tools)."""

    def __init__(self, *, image: np.ndarray | None = None, polygons: list[np.ndarray] | None = None, source: str = ""):
        """`image`: uint8 HxW, nonzero = watched; `polygons`: (N, 2) arrays of fractions to ignore."""
        if (image is None) == (polygons is None):
            raise ValueError("a mask is an image or polygons")
        self.image = None if image is None else (image >= 128).astype(np.uint8) * 255
        self.polygons = polygons
        self.source = source

    def watched(self, size: tuple[int, int]) -> np.ndarray:
        """bool (rows, columns) for a frame of `size` (width, height): True where motion counts."""
        w, h = size
        fine = self._watched_exactly((w * RENDER_SCALE, h * RENDER_SCALE)).astype(np.uint8) * 255
        return cv2.resize(fine, (w, h), interpolation=cv2.INTER_AREA) >= 255

    def ignored(self, size: tuple[int, int]) -> np.ndarray:
        """bool (rows, columns) at `size` (width, height), True where ignored: for drawing."""
        return ~self._watched_exactly(size)

    def _watched_exactly(self, size: tuple[int, int]) -> np.ndarray:
        w, h = size
        if self.image is not None:
            return cv2.resize(self.image, (w, h), interpolation=cv2.INTER_NEAREST) > 0
        canvas = np.full((h, w), 255, np.uint8)
        scale = np.array([w, h], np.float32)
        for poly in self.polygons:
            cv2.fillPoly(canvas, [np.round(poly * scale).astype(np.int32)], 0)
        return canvas > 0


def _polygons(data: object, where: str) -> list[np.ndarray]:
    if not isinstance(data, list) or not data:
        raise MaskError(f"{where}: expected a non-empty list of polygons, each a list of [x, y] fractions of the frame")
    polygons = []
    for i, poly in enumerate(data):
        if not isinstance(poly, list) or len(poly) < 3:
            raise MaskError(f"{where}: polygon {i}: needs at least 3 [x, y] points")
        points = []
        for j, p in enumerate(poly):
            if (not isinstance(p, list) or len(p) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in p)
                    or not all(0 <= v <= 1 for v in p)):
                raise MaskError(f"{where}: polygon {i} point {j}: must be [x, y] with fractions of the frame in 0..1, got {p!r}")
            points.append((float(p[0]), float(p[1])))
        polygons.append(np.array(points, np.float32))
    return polygons


def load_mask(path: Path | str) -> MotionMask:
    """The mask in `path` (an image, or `.json` polygons). Raises MaskError, one line naming it."""
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise MaskError(f"{where}: no such file" if not path.exists() else f"{where}: not a file")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError) as exc:
            raise MaskError(f"{where}: cannot read ({exc})") from None
        except json.JSONDecodeError as exc:
            raise MaskError(f"{where}: not valid JSON ({exc})") from None
        return MotionMask(polygons=_polygons(data, where), source=where)
    image = cv2.imread(where, cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise MaskError(f"{where}: not a readable image (a PNG, BMP, JPEG or PGM; or .json polygons)")
    mask = MotionMask(image=image, source=where)
    if not mask.image.any():
        raise MaskError(f"{where}: ignores the whole frame (all black): motion would never be seen")
    return mask
