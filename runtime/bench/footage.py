"""Footage for the motion benchmark and tests, made from real video: the empty scene of vtest.avi
(the per-pixel median of frames spread over the whole clip, which removes the walkers), with
sensor noise and a slow change of light, and the real clip itself.

Deterministic: the noise comes from a seeded generator. Nothing is written to the repository;
`write_clip` writes a temporary file for a benchmark run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

NOISE_BANK = 16  # noise fields made once; each frame takes one at a random offset
NOISE_MARGIN = 32  # pixels of slack around each field for those offsets


def iter_frames(video: Path | str, *, every: int = 1, limit: int | None = None, start: int = 0) -> Iterator[np.ndarray]:
    """The frames of `video` one at a time (a long clip need not fit in memory)."""
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise OSError(f"{video}: cannot open as a video")
    taken = index = 0
    try:
        while limit is None or taken < limit:
            if not cap.grab():
                break
            if index >= start and (index - start) % every == 0:
                ok, frame = cap.retrieve()
                if not ok:
                    break
                taken += 1
                yield frame
            index += 1
    finally:
        cap.release()


def read_frames(video: Path | str, *, every: int = 1, limit: int | None = None, start: int = 0) -> list[np.ndarray]:
    frames = list(iter_frames(video, every=every, limit=limit, start=start))
    if not frames:
        raise OSError(f"{video}: no frames")
    return frames


def median_background(video: Path | str, samples: int = 50) -> np.ndarray:
    """The scene without what moves: the per-pixel median of `samples` frames spread over the clip."""
    cap = cv2.VideoCapture(str(video))
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or samples
    cap.release()
    frames = read_frames(video, every=max(1, count // samples))
    stack = np.stack(frames).reshape(len(frames), -1).T.copy()  # pixels x frames: the median runs along rows
    mid = len(frames) // 2
    return np.partition(stack, mid, axis=1)[:, mid].reshape(frames[0].shape)


def slow_light(amplitude: float = 0.15, period_s: float = 60.0) -> Callable[[float], float]:
    """Gain over time: 1 +- `amplitude`, one sine period per `period_s` (starts and ends at 1)."""
    return lambda t: 1.0 + amplitude * math.sin(2 * math.pi * t / period_s)


@dataclass
class EmptyScene:
    """The empty scene at time t: background x light(t) + sensor noise, clipped like a sensor."""

    background: np.ndarray  # BGR uint8
    light: Callable[[float], float] = slow_light()
    noise_sigma: float = 5.0
    seed: int = 0

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        h, w = self.background.shape[:2]
        shape = (NOISE_BANK, h + NOISE_MARGIN, w + NOISE_MARGIN, self.background.shape[2])
        self._noise = (self._rng.standard_normal(shape, dtype=np.float32) * self.noise_sigma)
        self._base = self.background.astype(np.float32)

    def frame(self, t: float) -> np.ndarray:
        h, w = self.background.shape[:2]
        k, dy, dx = self._rng.integers(NOISE_BANK), self._rng.integers(NOISE_MARGIN), self._rng.integers(NOISE_MARGIN)
        out = self._base * np.float32(self.light(t))
        out += self._noise[k, dy:dy + h, dx:dx + w]
        return np.clip(out, 0, 255).astype(np.uint8)


def step_light(base: Callable[[float], float], at_s: float, factor: float) -> Callable[[float], float]:
    """`base`, times `factor` from `at_s` on: a light switched on."""
    return lambda t: base(t) * (factor if t >= at_s else 1.0)


@dataclass(frozen=True)
class Part:
    name: str  # empty | busy
    first: int  # frame index in the clip
    count: int


def bench_clip(video: Path | str, *, empty_s: float = 60.0, fps: float = 10.0, light_step: float | None = None,
               step_at_s: float = 20.0, seed: int = 0, busy_frames: int | None = None) -> tuple[list[Part], Iterator[np.ndarray]]:
    """The benchmark's clip: empty scene, the real video, empty scene again. With `light_step`,
    the light jumps by that factor `step_at_s` into the last empty part and stays there.
    Returns the parts and a generator of the frames."""
    background = median_background(video)
    n_empty = int(round(empty_s * fps))
    busy = read_frames(video, limit=busy_frames)
    parts = [Part("empty", 0, n_empty), Part("busy", n_empty, len(busy)), Part("empty", n_empty + len(busy), n_empty)]

    def frames() -> Iterator[np.ndarray]:
        first = EmptyScene(background, seed=seed)
        for i in range(n_empty):
            yield first.frame(i / fps)
        yield from busy
        light = slow_light() if light_step is None else step_light(slow_light(), step_at_s, light_step)
        last = EmptyScene(background, light=light, seed=seed + 1)
        for i in range(n_empty):
            yield last.frame(i / fps)

    return parts, frames()


def write_clip(path: Path, frames: Iterator[np.ndarray], fps: float) -> int:
    """Motion-JPEG AVI: cheap to decode (1.7 ms a 768x576 frame here), keeps the noise. Returns frames written."""
    writer = None
    n = 0
    try:
        for frame in frames:
            if writer is None:
                h, w = frame.shape[:2]
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
                if not writer.isOpened():
                    raise OSError(f"{path}: cannot write a Motion-JPEG AVI")
            writer.write(frame)
            n += 1
    finally:
        if writer is not None:
            writer.release()
    return n
