"""The live view's feed: the pipeline's latest inferred frame with what it saw, for whoever watches.

The pipeline hands over references only (one assignment under a lock only watchers contend for,
no copy of the image) and only while someone watches; everything costly (drawing, JPEG encoding)
is the reader's work, on the reader's thread. Frames are never changed after capture, so sharing
the array is safe.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from ..detections import Detections
from ..sources import Frame


@dataclass(frozen=True, slots=True)
class LiveTrack:
    id: str
    class_id: int
    box: tuple[float, float, float, float]  # xyxy, source pixels
    confirmed: bool  # an event (enough hits), not a tentative track
    seen: bool  # detected in this very frame (else coasting)


@dataclass(frozen=True, slots=True)
class LiveFrame:
    frame: Frame
    detections: Detections  # after the config's filters: what the tracker was given
    tracks: tuple[LiveTrack, ...]
    labels: list[str]


class LiveFeed:
    """One slot: the newest LiveFrame, filled only while `watch()` calls outnumber `unwatch()`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards _watchers and _latest
        self._watchers = 0
        self._latest: LiveFrame | None = None

    @property
    def watched(self) -> bool:
        return self._watchers > 0

    def publish(self, frame: Frame, detections: Detections, tracks, labels: list[str]) -> None:
        """From the inference thread, after the tracker; `tracks` are the tracker's live tracks."""
        if not self._watchers:
            return
        live = LiveFrame(frame, detections, tuple(
            LiveTrack(t.id, int(t.class_id), tuple(float(v) for v in t.box), bool(t.started),
                      t.last_seen_mono == frame.monotonic) for t in tracks), labels)
        with self._lock:  # again, under the lock: after an unwatch() in between, no frame may be put back
            if self._watchers:
                self._latest = live

    def latest(self) -> LiveFrame | None:
        return self._latest

    def watch(self) -> None:
        with self._lock:
            self._watchers += 1

    def unwatch(self) -> None:
        with self._lock:
            self._watchers = max(0, self._watchers - 1)
            if not self._watchers:
                self._latest = None  # nobody watches: let the frame go
