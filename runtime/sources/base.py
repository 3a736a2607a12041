"""What every camera source gives the pipeline: BGR frames with their capture time.

A source is opened, read frame by frame and closed by one reader thread (runtime/sources/capture.py);
it may block in native code, which is why the capture supervisor, not the source, owns timeouts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np


class SourceError(RuntimeError):
    """A source that cannot be opened or read; one line naming the source and the reason."""


class SourceEnded(Exception):
    """A finite source (a video file that does not loop) has no more frames."""


@dataclass(frozen=True)
class Frame:
    """One captured frame. `image` is BGR uint8 HxWx3; `full` is a larger view of the same instant
    (picamera2's main stream) for snapshots, or None when `image` is all there is."""

    image: np.ndarray
    seq: int  # frames captured since the daemon started, across reconnects
    monotonic: float  # time.monotonic() when the frame was captured: frame age = now - this
    wall: float  # time.time() at the same instant, for events
    full: np.ndarray | None = field(default=None, repr=False)

    @property
    def age(self) -> float:
        return time.monotonic() - self.monotonic


class Source:
    """One connection to a camera or a file. `read` blocks until a frame (BGR uint8) is available,
    raises `SourceEnded` at the end of a file, and `SourceError` on a failed read."""

    name: str = "source"
    fps: float | None = None  # the source's own rate when known (a file's, a camera's)
    # True for a recording read as fast as possible: the next frame waits until the pipeline took
    # the last, so every frame is inferred and none is decoded only to be dropped.
    lockstep: bool = False

    def open(self) -> None:
        raise NotImplementedError

    def read(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Returns (image for inference, full-size image or None)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def describe(self) -> str:
        return self.name
