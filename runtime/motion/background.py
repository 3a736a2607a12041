"""The background model of the small grey frame: per pixel, the brightness expected there and how
much it varies on its own.

A pixel is foreground when it differs from its expectation by more than its own threshold,
max(threshold, noise_factor x its noise). Sensor noise stays under it; a pixel that flickers
(leaves, water) learns a larger noise and a higher threshold. The expectation is the background
times the frame's global gain (the median ratio of frame to background over the watched
pixels), so light that changes the whole scene at once (clouds, dusk, a camera's exposure, a
light switched on) moves the expectation with it instead of making every pixel foreground.

Background pixels are learned with time constant `learn_s`; foreground pixels are not learned
while they move, but a pixel that stays foreground for `absorb_s` (something that arrived and
stopped: a parked car, a person standing still; or the ghost of one that left) becomes
background at once. Walkers never stay on one pixel that long. When more than `relearn_share` of the
watched pixels change at once and the gain does not explain it (the camera moved, an infrared
switch, lights that light only part of the scene), the model starts again from the current frame
and reports no motion for `settle_s`, instead of reporting the whole frame until it has slowly
learned the new scene. So it does when the gain itself jumps by more than RELEARN_GAIN: a light
switched on saturates bright parts of the scene, and the small frame's pixels that mix saturated
and unsaturated camera pixels brighten by less than the gain (measured: a +40 % step left 2.5 %
of the vtest.avi street "moving" for 10 s).

Time comes in with each frame (seconds, monotonic), so the model learns at the same pace whatever
the frame rate, and a test can replay frames at their own timestamps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

NOISE_FLOOR = 1.0  # grey levels: the least noise a pixel is assumed to have
MAX_STEP_S = 1.0  # a longer gap between frames (a lost camera) learns no faster than this
SATURATED = 250.0  # pixels this bright say nothing about the gain (clipped)
DARK = 10.0  # nor do background pixels this dark (a ratio of small numbers)
MIN_GAIN_PIXELS = 0.1  # share of watched pixels needed to measure the gain; else it is taken as 1
# A gain this far from 1 (either way) is a sudden change: slow light (a +-15 % swing over a minute)
# keeps the gain within +-8 %, since the background follows it with time constant learn_s.
RELEARN_GAIN = 1.15

LEARNING, WATCHING, RELEARNING = "learning", "watching", "relearning"


@dataclass(frozen=True)
class Foreground:
    """One frame's verdict on the small grey frame."""

    pixels: np.ndarray  # bool, the small frame's shape: foreground and watched
    share: float  # of the watched pixels
    gain: float  # frame brightness over the background's
    state: str  # learning (first frames), watching, relearning (after a sudden global change)


class BackgroundModel:
    def __init__(self, shape: tuple[int, int], *, threshold: float, noise_factor: float, learn_s: float,
                 absorb_s: float, relearn_share: float, settle_s: float, watched: np.ndarray | None = None):
        """`shape`: (rows, columns) of the small frame; `watched`: bool, False where the mask
        ignores (None: everything is watched)."""
        self.shape = shape
        self.threshold = threshold
        self.noise_factor = noise_factor
        self.learn_s = learn_s
        self.absorb_s = absorb_s
        self.relearn_share = relearn_share
        self.settle_s = settle_s
        self.watched = np.ones(shape, bool) if watched is None else watched.astype(bool)
        if self.watched.shape != shape:
            raise ValueError(f"mask is {self.watched.shape}, frame is {shape}")
        self._n_watched = max(1, int(self.watched.sum()))
        self.mean: np.ndarray | None = None
        self.var = np.full(shape, NOISE_FLOOR**2, np.float32)
        self.state = LEARNING
        self.relearned = 0  # times the model started again
        self._settle_until = -math.inf
        self._last_t: float | None = None
        self._none = np.zeros(shape, bool)
        self._fg_s = np.zeros(shape, np.float32)  # how long each pixel has been foreground, about

    def reset(self) -> None:
        """Forget everything: the next frame starts learning afresh."""
        self.mean = None
        self.var[:] = NOISE_FLOOR**2
        self.state = LEARNING
        self._fg_s[:] = 0
        self._last_t = None

    def _gain(self, grey: np.ndarray) -> float:
        mean = self.mean
        valid = self.watched & (grey < SATURATED) & (mean > DARK) & (mean < SATURATED)
        if valid.sum() < MIN_GAIN_PIXELS * self._n_watched:
            return 1.0
        ratio = grey[valid] / mean[valid]
        mid = len(ratio) // 2
        return float(np.partition(ratio, mid)[mid])

    def apply(self, grey: np.ndarray, t: float) -> Foreground:
        """Classify `grey` (float32, `shape`), captured at `t`, and learn from it."""
        if self.mean is None:
            self.mean = grey.copy()
            self.state = LEARNING
            self._settle_until = t + self.settle_s
            self._last_t = t
            return Foreground(self._none, 0.0, 1.0, self.state)
        dt = min(max(t - self._last_t, 0.0), MAX_STEP_S)
        self._last_t = t
        gain = self._gain(grey)
        expected = np.minimum(self.mean * gain, 255.0)
        diff = np.abs(grey - expected)
        limit = np.maximum(self.threshold, self.noise_factor * np.sqrt(self.var))
        fg = (diff > limit) & self.watched
        share = float(fg.sum()) / self._n_watched

        if self.state != WATCHING:
            if t < self._settle_until:
                # Settling into a new scene: learn fast, report nothing.
                self._learn(grey, diff, self._none, 1.0 - math.exp(-dt / (self.settle_s / 4)))
                return Foreground(self._none, share, gain, self.state)
            self.state = WATCHING
        if share > self.relearn_share or abs(math.log(max(gain, 1e-3))) > math.log(RELEARN_GAIN):
            self.mean = grey.copy()
            self._fg_s[:] = 0
            self.state = RELEARNING
            self.relearned += 1
            self._settle_until = t + self.settle_s
            return Foreground(self._none, share, gain, self.state)
        if share > 0 or self._fg_s.any():
            # Foreground time grows while a pixel is foreground and drains twice as fast while it
            # is not, so a pixel that walkers cross now and then never adds up to `absorb_s`.
            self._fg_s += np.where(fg, np.float32(dt), np.float32(-2 * dt))
            np.maximum(self._fg_s, 0, out=self._fg_s)
            settled = self._fg_s >= self.absorb_s
            if settled.any():
                self.mean[settled] = grey[settled] / gain
                self._fg_s[settled] = 0
                fg = fg & ~settled
                share = float(fg.sum()) / self._n_watched
        self._learn(grey, diff, fg, 1.0 - math.exp(-dt / self.learn_s))
        return Foreground(fg, share, gain, self.state)

    def _learn(self, grey: np.ndarray, diff: np.ndarray, fg: np.ndarray, alpha: float) -> None:
        rate = np.where(fg, np.float32(0), np.float32(alpha)) if fg.any() else np.float32(alpha)
        self.mean += rate * (grey - self.mean)
        # The noise is learned from background pixels only: what is foreground is not noise, and
        # a person who passes must not leave a deaf patch behind.
        background = ~fg
        noise = np.minimum(diff, 2.0 * self.threshold) ** 2
        self.var += np.where(background, np.float32(alpha) * (noise - self.var), 0.0).astype(np.float32)
        np.maximum(self.var, NOISE_FLOOR**2, out=self.var)
