"""The latest-frame slot between capture and inference: holds one frame, never a queue.

Capture overwrites; inference takes the newest. A frame overwritten before anyone took it is
counted as dropped, so memory stays at one frame whatever the speed mismatch.
"""

from __future__ import annotations

import threading

from .base import Frame


class LatestFrameSlot:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self.put_count = 0
        self.dropped = 0

    def put(self, frame: Frame) -> None:
        with self._cond:
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self.put_count += 1
            self._cond.notify_all()

    def take(self, timeout: float) -> Frame | None:
        """The newest frame not yet taken, waiting up to `timeout` seconds; None if none came."""
        with self._cond:
            if self._frame is None:
                self._cond.wait(timeout)
            frame, self._frame = self._frame, None
            if frame is not None:
                self._cond.notify_all()
            return frame

    def wait_empty(self, timeout: float) -> bool:
        """Wait up to `timeout` for the frame in the slot to be taken; True once it is empty."""
        with self._cond:
            if self._frame is not None:
                self._cond.wait(timeout)
            return self._frame is None

    def peek(self) -> Frame | None:
        """The newest frame without taking it (to test a model on real footage before a swap)."""
        with self._cond:
            return self._frame
