"""The one implementation of preprocessing: frame in, model input tensor out.

Everything that feeds a model goes through `Preprocessor`: the runtime's detector, the daemon, the
benchmark, and the converter's calibration and fidelity runs. Frames are always BGR uint8
(OpenCV's order; picamera2 sources are configured to match), H x W x 3, or H x W for grey.

Normalisation and input quantization are folded into one 256-entry lookup table per channel, so
preprocessing is one resize plus one table lookup whatever the model wants (float, uint8, int8),
and no float image is ever built for a quantized input. Where a uint8 input's quantization equals
the normalisation (scale 1/255 and zero point 0 for a 0..1 model; 2/255 and 127 or 128 for -1..1),
even the lookup is skipped and the resized pixels are fed as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

COLORS = ("rgb", "bgr", "gray")
RESIZES = ("stretch", "letterbox")
# linear: OpenCV / TF2 bilinear with half-pixel centres. linear_legacy: TF1 ResizeBilinear
# (align_corners=false, half_pixel_centers=false), which TF Object Detection API graphs use; the
# two differ by up to half a source pixel and that costs measurable accuracy, so the manifest says.
INTERPOLATIONS = ("linear", "linear_legacy", "nearest", "area")


@dataclass(frozen=True)
class InputSpec:
    """What the model expects, from the manifest's `input` section."""

    width: int
    height: int
    color: str = "rgb"
    resize: str = "stretch"
    interpolation: str = "linear"
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (255.0, 255.0, 255.0)
    pad_value: int = 114

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"input size must be positive, got {self.width}x{self.height}")
        for name, value, allowed in (
            ("color", self.color, COLORS),
            ("resize", self.resize, RESIZES),
            ("interpolation", self.interpolation, INTERPOLATIONS),
        ):
            if value not in allowed:
                raise ValueError(f"input.{name}: {value!r} is not one of {', '.join(allowed)}")
        if any(s == 0 for s in self.std):
            raise ValueError("input.normalization.std: must not contain 0")

    @property
    def channels(self) -> int:
        return 1 if self.color == "gray" else 3

    @staticmethod
    def range_to_mean_std(lo: float, hi: float) -> tuple[float, float]:
        """Pixels 0..255 mapped linearly onto lo..hi, written as (p - mean) / std."""
        std = 255.0 / (hi - lo)
        return -lo * std, std


@dataclass(frozen=True)
class Quantization:
    """Affine quantization of an input tensor: real = (q - zero_point) * scale."""

    scale: float
    zero_point: int


@dataclass(frozen=True)
class Transform:
    """How a source frame was mapped onto the model input, to map boxes back."""

    src_width: int
    src_height: int
    scale_x: float  # input pixels per source pixel
    scale_y: float
    pad_x: float  # input pixels of padding on the left / top
    pad_y: float
    in_width: int
    in_height: int

    def to_source(self, det):
        """Detections in normalised input coordinates -> source pixels, clipped to the frame."""
        sx = self.in_width / self.scale_x
        sy = self.in_height / self.scale_y
        return det.scaled(sx, sy, -self.pad_x / self.scale_x, -self.pad_y / self.scale_y).clipped(
            self.src_width, self.src_height
        )


def _lut(spec: InputSpec, dtype: np.dtype, quant: Quantization | None) -> np.ndarray | None:
    """(256, C) table from pixel value to input value, or None when it is the identity."""
    pixels = np.arange(256, dtype=np.float64)[:, None]
    mean = np.asarray(spec.mean[: spec.channels], np.float64)[None, :]
    std = np.asarray(spec.std[: spec.channels], np.float64)[None, :]
    real = (pixels - mean) / std
    if np.issubdtype(dtype, np.floating):
        return real.astype(dtype)
    info = np.iinfo(dtype)
    exact = real if quant is None or quant.scale == 0 else real / quant.scale + quant.zero_point
    # The pixels themselves are the input when they are within half a step of the exact value, which
    # is as close as rounding gets (a [-1, 1] model calibrated to scale 2/255, zero point 127 sits
    # exactly half a step from the pixels: feeding them is as exact as any table).
    if dtype == np.uint8 and np.abs(exact - pixels).max() <= 0.5 + 1e-6:
        return None
    return np.clip(np.round(exact), info.min, info.max).astype(dtype)


@lru_cache(maxsize=32)
def _legacy_matrix(src_w: int, src_h: int, dst_w: int, dst_h: int) -> np.ndarray:
    # TF1 ResizeBilinear without half-pixel centres samples source (x * src/dst, y * src/dst).
    return np.array([[src_w / dst_w, 0, 0], [0, src_h / dst_h, 0]], np.float64)


def resize(image: np.ndarray, width: int, height: int, interpolation: str) -> np.ndarray:
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    if interpolation == "linear_legacy":
        return cv2.warpAffine(
            image,
            _legacy_matrix(w, h, width, height),
            (width, height),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
    flag = {"linear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST, "area": cv2.INTER_AREA}[interpolation]
    return cv2.resize(image, (width, height), interpolation=flag)


LAYOUTS = ("nhwc", "nchw")


class Preprocessor:
    """Turns BGR frames into input tensors for one model input. Build once, call per frame.

    `layout` is the model tensor's: `nhwc` ([1, H, W, C], TFLite's own) or `nchw` ([1, C, H, W], as
    LiteRT exports of PyTorch models take it). Only where the values land differs: the same resize,
    letterbox, colour order and table feed both.
    """

    def __init__(self, spec: InputSpec, dtype=np.float32, quantization: Quantization | None = None, layout: str = "nhwc"):
        if layout not in LAYOUTS:
            raise ValueError(f"layout {layout!r} is not one of {', '.join(LAYOUTS)}")
        self.spec = spec
        self.dtype = np.dtype(dtype)
        self.quantization = quantization
        self.layout = layout
        self._lut = _lut(spec, self.dtype, quantization)
        self._uniform = self._lut is not None and bool(np.all(self._lut == self._lut[:, :1]))

    @property
    def passthrough(self) -> bool:
        """True when resized pixels are fed to the model unchanged (no lookup, no float pass)."""
        return self._lut is None

    def transform_for(self, src_width: int, src_height: int) -> Transform:
        s = self.spec
        if s.resize == "stretch":
            return Transform(src_width, src_height, s.width / src_width, s.height / src_height, 0.0, 0.0, s.width, s.height)
        scale = min(s.width / src_width, s.height / src_height)
        nw, nh = round(src_width * scale), round(src_height * scale)
        return Transform(src_width, src_height, nw / src_width, nh / src_height, (s.width - nw) // 2, (s.height - nh) // 2, s.width, s.height)

    def resized(self, frame: np.ndarray) -> tuple[np.ndarray, Transform]:
        """The frame resized (and letterboxed) in the model's colour order, still uint8."""
        if frame.dtype != np.uint8 or frame.ndim not in (2, 3):
            raise ValueError(f"frame must be uint8 HxW or HxWx3, got {frame.dtype} {frame.shape}")
        s = self.spec
        h, w = frame.shape[:2]
        t = self.transform_for(w, h)
        if s.color == "gray":
            if frame.ndim == 3:
                frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        elif frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        if s.resize == "stretch":
            image = resize(frame, s.width, s.height, s.interpolation)
        else:
            nw, nh = round(w * t.scale_x), round(h * t.scale_y)
            inner = resize(frame, nw, nh, s.interpolation)
            px, py = int(t.pad_x), int(t.pad_y)
            image = cv2.copyMakeBorder(
                inner, py, s.height - nh - py, px, s.width - nw - px, cv2.BORDER_CONSTANT,
                value=(s.pad_value,) * 3,
            )
        if s.color == "rgb":
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        if image.ndim == 2:
            image = image[:, :, None]
        return image, t

    def __call__(self, frame: np.ndarray, out: np.ndarray | None = None) -> tuple[np.ndarray, Transform]:
        """Returns ([1, H, W, C] or [1, C, H, W] tensor of the model's dtype, transform). Writes into
        `out` if given."""
        image, t = self.resized(frame)
        h, w, c = image.shape
        if self.layout == "nchw":
            if out is None:
                out = np.empty((1, c, h, w), self.dtype)
            planes = out.reshape(c, h, w)
            for ch in range(c):  # one plane at a time: the table lookup writes straight into it
                if self._lut is None:
                    np.copyto(planes[ch], image[:, :, ch])
                else:
                    np.take(self._lut[:, ch], image[:, :, ch], out=planes[ch])
            return out, t
        if out is None:
            out = np.empty((1, *image.shape), self.dtype)
        target = out.reshape(image.shape)
        if self._lut is None:
            np.copyto(target, image)
        elif self._uniform:
            np.take(self._lut[:, 0], image, out=target)
        else:
            for c in range(image.shape[2]):
                np.take(self._lut[:, c], image[:, :, c], out=target[:, :, c])
        return out, t
