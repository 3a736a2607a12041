"""OpenCV sources: a V4L2 device (index or /dev path), an RTSP/HTTP URL, or a video file.

A file plays at its own frame rate by default, as a camera would (so frame ages and drop counts
mean what they mean on a board), or with `as_fast_as_possible` as fast as the pipeline takes its
frames: every frame inferred, the next one decoded while the current one is inferred. FFmpeg's
open/read timeouts are set so a network camera that goes silent raises instead of blocking;
the capture supervisor still bounds every call in case a backend ignores them.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from ..config import classify_source
from .base import Source, SourceEnded, SourceError


class OpenCVSource(Source):
    def __init__(
        self,
        spec: str,
        *,
        width: int = 0,
        height: int = 0,
        fps: float | None = None,
        loop: bool = False,
        as_fast_as_possible: bool = False,
        open_timeout_s: float = 10.0,
        read_timeout_s: float = 5.0,
    ):
        self.spec = spec
        self.kind = classify_source(spec)
        self.name = spec
        self.width, self.height = width, height
        self.requested_fps = fps
        self.loop = loop
        self.as_fast_as_possible = as_fast_as_possible
        self.open_timeout_ms = int(open_timeout_s * 1000)
        self.read_timeout_ms = int(read_timeout_s * 1000)
        self.fps = fps
        self.lockstep = self.kind == "file" and as_fast_as_possible
        self._cap: cv2.VideoCapture | None = None
        self._next_due = 0.0  # monotonic time the next file frame is due (paced playback)

    def describe(self) -> str:
        return f"{self.kind} {self.spec}"

    def _open_capture(self) -> cv2.VideoCapture:
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, self.open_timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, self.read_timeout_ms]
        if self.kind == "device":
            target = int(self.spec) if self.spec.isdigit() else self.spec
            cap = cv2.VideoCapture(target, cv2.CAP_V4L2, params)
        elif self.kind == "network":
            cap = cv2.VideoCapture(self.spec, cv2.CAP_FFMPEG, params)
        else:
            if not Path(self.spec).exists():
                raise SourceError(f"{self.spec}: no such file")
            cap = cv2.VideoCapture(self.spec, cv2.CAP_ANY, params)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"{self.spec}: cannot open ({self.kind})")
        return cap

    def open(self) -> None:
        cap = self._open_capture()
        if self.kind == "device":
            # A camera's own buffer would hand us stale frames: keep one, the slot does the rest.
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
            if self.width and self.height:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            if self.requested_fps:
                cap.set(cv2.CAP_PROP_FPS, self.requested_fps)
        own = cap.get(cv2.CAP_PROP_FPS)
        if not self.requested_fps:
            self.fps = own if own and 0 < own < 1000 else None
        self._cap = cap
        self._next_due = time.monotonic()

    def _grab(self) -> np.ndarray | None:
        ok, image = self._cap.read()
        return image if ok and image is not None else None

    def read(self) -> tuple[np.ndarray, np.ndarray | None]:
        if self._cap is None:
            raise SourceError(f"{self.spec}: not open")
        image = self._grab()
        if image is None and self.kind == "file":
            if not self.loop:
                raise SourceEnded(self.spec)
            # Loop by reopening the path, not by seeking: a file replaced on disk is picked up,
            # and a file deleted makes the reopen fail, which the supervisor treats as a loss.
            self._cap.release()
            self._cap = None
            self._cap = self._open_capture()
            image = self._grab()
        if image is None:
            raise SourceError(f"{self.spec}: read failed")
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        if self.kind == "file" and self.width and self.height and image.shape[:2] != (self.height, self.width):
            image = cv2.resize(image, (self.width, self.height), interpolation=cv2.INTER_AREA)
        if self.kind == "file" and not self.as_fast_as_possible and self.fps:
            # Paced like a camera: a frame is "captured" when its time comes, not when decoded.
            now = time.monotonic()
            if self._next_due > now:
                time.sleep(self._next_due - now)
            self._next_due = max(self._next_due, now - 1.0 / self.fps) + 1.0 / self.fps
        return image, None

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
