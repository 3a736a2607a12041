"""The latest-frame slot between capture and inference: holds one item, never a queue.

The producer overwrites; the consumer takes the newest. An item overwritten before anyone took it
is counted as dropped, so memory stays at one frame whatever the speed mismatch. The pipeline
uses a second slot between preprocessing and invoke.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: T | None = None
        self.put_count = 0
        self.dropped = 0

    def put(self, frame: T) -> None:
        with self._cond:
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self.put_count += 1
            self._cond.notify_all()

    def take(self, timeout: float) -> T | None:
        """The newest item not yet taken, waiting up to `timeout` seconds; None if none came."""
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

    def peek(self) -> T | None:
        """The newest frame without taking it (to test a model on real footage before a swap)."""
        with self._cond:
            return self._frame
