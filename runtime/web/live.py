"""The live view: JPEGs of the pipeline's latest frame with its detections and tracks drawn.

It costs the pipeline nothing while nobody watches (the feed is not even filled) and little while
someone does: one encode per shown frame, shared by every viewer, at most `fps` a second, done on
a viewer's thread; the frame is scaled down to `width` before anything is drawn. At most
`max_viewers` watch at once; more are refused (LiveBusy), never queued.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

import cv2
import numpy as np

from ..annotate import draw_detections, draw_tracks
from ..pipeline.live import LiveFeed, LiveFrame

log = logging.getLogger("edgewatch.web")

POLL_S = 0.05  # how often the polling viewer looks for a newer frame (the pipeline never signals)
TRAIL_POINTS = 24  # recent positions drawn behind each track


class LiveBusy(Exception):
    """All viewer places are taken (or the view is closing)."""


class LiveView:
    def __init__(self, feed: LiveFeed, *, fps: float = 5.0, width: int = 640, quality: int = 70, max_viewers: int = 5):
        self.feed = feed
        self.fps = fps
        self.width = width
        self.quality = quality
        self.max_viewers = max_viewers
        # _cond guards every field below; the encode itself runs outside it, by one thread at a time.
        self._cond = threading.Condition()
        self._viewers = 0
        self._closed = False
        self._jpeg: bytes | None = None
        self._number = 0  # of the cached JPEG: rises by one per encode
        self._shown_seq: int | None = None  # the frame the cached JPEG shows
        self._next_at = 0.0  # monotonic time of the next encode allowed
        self._encoding = False
        # One waiting viewer polls the feed; the others sleep until an encode wakes them: wakeups
        # cost the board CPU and the pipeline its GIL, and would grow with every viewer.
        self._poller: int | None = None
        self.encoded = 0
        self._trails: dict[str, deque[tuple[int, int]]] = {}  # only the encoding thread touches it

    @property
    def viewers(self) -> int:
        return self._viewers

    @contextmanager
    def viewer(self) -> Iterator[None]:
        """A viewer's place for the `with` block; raises LiveBusy when all are taken."""
        with self._cond:
            if self._closed or self._viewers >= self.max_viewers:
                raise LiveBusy(f"the live view has {self._viewers} viewers, its limit")
            self._viewers += 1
        self.feed.watch()
        try:
            yield
        finally:
            self.feed.unwatch()
            with self._cond:
                self._viewers -= 1
                if not self._viewers:  # nobody left: hold no picture
                    self._jpeg, self._shown_seq = None, None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def next_jpeg(self, after: int, timeout: float) -> tuple[int, bytes] | None:
        """The newest JPEG numbered above `after` (0: any), waiting up to `timeout` seconds for one;
        None on timeout or close. Call it inside `viewer()`."""
        try:
            return self._next_jpeg(after, time.monotonic() + timeout, threading.get_ident())
        finally:
            with self._cond:
                if self._poller == threading.get_ident():  # hand polling over to a viewer still waiting
                    self._poller = None
                    self._cond.notify_all()

    def _next_jpeg(self, after: int, deadline: float, me: int) -> tuple[int, bytes] | None:
        while True:
            with self._cond:
                while True:
                    if self._closed:
                        return None
                    if self._jpeg is not None and self._number > after:
                        return self._number, self._jpeg
                    now = time.monotonic()
                    if now >= deadline:
                        return None
                    live = self.feed.latest()
                    if (not self._encoding and live is not None and live.frame.seq != self._shown_seq
                            and now >= self._next_at):
                        self._encoding = True
                        self._next_at = now + 1.0 / self.fps
                        break
                    if self._poller is None:
                        self._poller = me
                    if self._poller == me:
                        wait = POLL_S if self._next_at <= now else self._next_at - now
                    else:  # woken by the next encode, or by the poller leaving
                        wait = deadline - now
                    self._cond.wait(min(deadline - now, max(wait, 0.005)))
            jpeg = None
            try:
                jpeg = self._encode(live)
            except Exception:  # noqa: BLE001 - a frame that cannot be drawn is skipped, the view goes on
                log.exception("live view: encoding frame %d failed", live.frame.seq)
            finally:
                with self._cond:
                    self._encoding = False
                    if jpeg is not None:
                        self._jpeg, self._shown_seq = jpeg, live.frame.seq
                        self._number += 1
                        self.encoded += 1
                    else:
                        self._shown_seq = live.frame.seq  # do not retry the same frame
                    self._cond.notify_all()

    def _encode(self, live: LiveFrame) -> bytes | None:
        image = live.frame.image
        h, w = image.shape[:2]
        scale = min(1.0, self.width / w)
        if scale < 1.0:
            image = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        out = draw_detections(image, live.detections.scaled(scale, scale), live.labels)  # a copy: the frame is shared
        ids = set()
        for t in live.tracks:
            ids.add(t.id)
            if t.seen:
                x1, _, x2, y2 = t.box
                trail = self._trails.setdefault(t.id, deque(maxlen=TRAIL_POINTS))
                trail.append((round((x1 + x2) / 2 * scale), round(y2 * scale)))
        for gone in self._trails.keys() - ids:
            del self._trails[gone]
        draw_tracks(out, live.tracks, {k: list(v) for k, v in self._trails.items()}, scale)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(live.frame.wall))
        cv2.putText(out, stamp, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(out, stamp, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        return buf.tobytes() if ok else None


def placeholder_jpeg(text: str, width: int) -> bytes:
    """A grey picture saying `text`: what a viewer sees before the first frame or while paused."""
    w = max(160, width)
    h = w * 3 // 4
    image = np.full((h, w, 3), 64, np.uint8)
    cv2.putText(image, text, (w // 10, h // 2), cv2.FONT_HERSHEY_SIMPLEX, w / 640, (220, 220, 220), 1, cv2.LINE_AA)
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 70])[1].tobytes()
