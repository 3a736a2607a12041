"""The motion detector: a frame and its capture time in, the boxes that moved out.

    detector = MotionDetector(config.motion, mask=load_mask(path) if path else None)
    motion = detector.detect(frame_bgr, t)          # t: capture time, seconds (monotonic)
    motion.boxes                                     # (N, 4) float32 xyxy, source pixels
    motion.moving, motion.share, motion.state

The frame is reduced to a small grey frame (downscale.py), compared with the background model
(background.py); the foreground pixels are grouped (a 3x3 dilation joins the pieces of one
walker) and a group counts as motion when it holds at least `min_pixels` foreground pixels, so a
single noisy pixel never does. Frames of another size (a camera reconfigured) start a new model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from .background import WATCHING, BackgroundModel
from .downscale import Downscaler
from .mask import MotionMask
from ..config import MotionConfig

_KERNEL = np.ones((3, 3), np.uint8)


@dataclass(frozen=True)
class Motion:
    boxes: np.ndarray  # (N, 4) float32 xyxy in source pixels
    share: float  # share of the watched small-frame pixels that changed
    state: str  # learning | watching | relearning (see background.py)
    gain: float = 1.0
    small_boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.int32), repr=False)  # on the small frame

    @property
    def moving(self) -> bool:
        return len(self.boxes) > 0

    @property
    def settled(self) -> bool:
        """False while the model is (re)learning the scene and cannot tell motion."""
        return self.state == WATCHING


class MotionDetector:
    def __init__(self, config: MotionConfig, mask: MotionMask | None = None):
        self.config = config
        self.mask = mask
        self.downscale: Downscaler | None = None
        self.model: BackgroundModel | None = None

    def _build(self, width: int, height: int) -> None:
        c = self.config
        self.downscale = Downscaler((width, height), c.frame_height)
        watched = self.mask.watched(self.downscale.size) if self.mask is not None else None
        w, h = self.downscale.size
        self.model = BackgroundModel((h, w), threshold=c.threshold, noise_factor=c.noise_factor, learn_s=c.learn_s,
                                     absorb_s=c.absorb_s, relearn_share=c.relearn_share, settle_s=c.settle_s,
                                     watched=watched)

    def reset(self) -> None:
        if self.model is not None:
            self.model.reset()

    def detect(self, image: np.ndarray, t: float) -> Motion:
        h, w = image.shape[:2]
        if self.downscale is None or self.downscale.source_size != (w, h):
            self._build(w, h)
        grey = self.downscale(image)
        fg = self.model.apply(grey, t)
        small = self._boxes(fg.pixels) if fg.share > 0 else np.zeros((0, 4), np.int32)
        sx, sy = self.downscale.scale
        boxes = (small.astype(np.float32) * np.array([sx, sy, sx, sy], np.float32)).reshape(-1, 4)
        np.minimum(boxes, np.array([w, h, w, h], np.float32), out=boxes)
        return Motion(boxes, fg.share, fg.state, fg.gain, small)

    def _boxes(self, pixels: np.ndarray) -> np.ndarray:
        """xyxy boxes (small-frame pixels, exclusive right/bottom) of the groups with enough foreground."""
        grown = cv2.dilate(pixels.view(np.uint8), _KERNEL)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
        if n <= 1:
            return np.zeros((0, 4), np.int32)
        counts = np.bincount(labels[pixels], minlength=n)
        keep = np.flatnonzero(counts >= self.config.min_pixels)
        keep = keep[keep > 0]
        x, y, bw, bh = (stats[keep, i] for i in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT))
        return np.stack([x, y, x + bw, y + bh], axis=1).astype(np.int32)
