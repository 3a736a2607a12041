"""The motion gate in the pipeline: every frame the prepare thread takes is looked at by the motion
detector (runtime/motion), and the gate decides whether the model sees it, whole or as crops.

Built from `[motion]` when the pipeline starts and on a reload (in the caller's thread, so a bad
mask fails the reload and the running gate stays). With `enabled = false` every frame goes to the
model and no motion is computed.
"""

from __future__ import annotations

import numpy as np

from ..config import MotionConfig
from ..health import MotionHealth
from ..motion import Decision, Gate, GateStats, MaskError, Motion, MotionDetector, MotionMask, load_mask
from ..motion.regions import plan_regions
from ..sources import Frame
from ..table import SchemaError


def load_motion_mask(config: MotionConfig, origin: str) -> MotionMask | None:
    """The configured mask, or None. Raises SchemaError: `CONFIG: motion.mask: FILE: reason`."""
    if not config.enabled or config.mask is None:
        return None
    try:
        return load_mask(config.mask)
    except MaskError as exc:
        raise SchemaError(origin, "motion.mask", str(exc)) from None


class FrameGate:
    """Used by the prepare thread only (decide, crops); `health` may be called from any thread."""

    def __init__(self, config: MotionConfig, origin: str):
        self.config = config
        self.mask = load_motion_mask(config, origin)
        self.detector = MotionDetector(config, self.mask) if config.enabled else None
        self.gate = Gate(config.keepalive_s, config.track_refresh_s)
        self.stats = GateStats()

    def decide(self, frame: Frame, live_tracks: int) -> tuple[Decision, Motion | None]:
        motion = self.detector.detect(frame.image, frame.monotonic) if self.detector is not None else None
        decision = self.gate.decide(frame.monotonic, motion, live_tracks)
        self.stats.record(frame.monotonic, motion, decision)
        return decision, motion

    def crops(self, frame: Frame, motion: Motion | None, track_boxes: list[np.ndarray],
              model_size: tuple[int, int]) -> list[tuple[int, int, int, int]] | None:
        """With `regions` on and something moving: crops around the motion and the live tracks, or
        None for the whole frame (see runtime/motion/regions.py)."""
        if not self.config.regions or motion is None or not motion.moving:
            return None
        boxes = np.concatenate([motion.boxes, np.asarray(track_boxes, np.float32).reshape(-1, 4)])
        h, w = frame.image.shape[:2]
        crops = plan_regions(boxes, (w, h), model_size)
        if crops is not None:
            self.stats.cropped()
        return crops

    def health(self) -> MotionHealth:
        return self.stats.health(enabled=self.detector is not None)
