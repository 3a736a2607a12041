"""Capture: one reader thread per connection, supervised, feeding the latest-frame slot.

Every blocking camera call (open, read, close) runs on the reader thread. The supervisor bounds
each with a timeout: a reader that does not open in `open_timeout_s`, or goes `read_timeout_s`
without a frame, is abandoned (a thread stuck in native code cannot be killed, only left) and a
fresh connection is made after a backoff that doubles up to `backoff_max_s`. Losses and
recoveries are reported through `on_event`, so they reach the journal and the event log.

OpenCV serialises FFmpeg opens within a process: while an abandoned open hangs, new opens wait
behind it. The daemon stays up meanwhile (status "degraded", the loss logged, the watchdog fed by
the pipeline) and recovers when the call returns; network opens return by FFmpeg's own timeout
(CAP_PROP_OPEN_TIMEOUT_MSEC), set by the OpenCV source.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from typing import Callable

from ..errors import one_line
from .base import Frame, Source, SourceEnded
from .slot import LatestSlot

log = logging.getLogger("edgewatch.capture")

# Readers abandoned while stuck in a native call that have not come back yet. Past this many,
# no new connection is tried until one returns, so a camera that hangs every call cannot make
# threads pile up without bound.
MAX_STUCK_READERS = 3

EventSink = Callable[[str, str, dict], None]


class _Reader(threading.Thread):
    def __init__(self, source: Source, slot: LatestSlot[Frame], seq: itertools.count):
        super().__init__(name="edgewatch-reader", daemon=True)
        self.source, self.slot, self.seq = source, slot, seq
        self.opened = threading.Event()
        self.done = threading.Event()
        self.cancelled = False
        self.ended = False
        self.error: str | None = None
        self.frames = 0
        self.last_frame = 0.0

    def run(self) -> None:
        try:
            self.source.open()
            self.last_frame = time.monotonic()
            self.opened.set()
            while not self.cancelled:
                image, full = self.source.read()
                while self.source.lockstep and not self.cancelled and not self.slot.wait_empty(0.1):
                    self.last_frame = time.monotonic()  # waiting on the pipeline is not a stall
                if self.cancelled:
                    break
                now, wall = time.monotonic(), time.time()
                self.last_frame = now
                self.frames += 1
                self.slot.put(Frame(image, next(self.seq), now, wall, full))
        except SourceEnded:
            self.ended = True
        except Exception as exc:  # noqa: BLE001 - any failure of a source is a loss to recover from
            self.error = one_line(exc)
        finally:
            try:
                self.source.close()
            except Exception as exc:  # noqa: BLE001
                log.debug("closing %s: %s", self.source.describe(), exc)
            self.done.set()


class Capture:
    """Keeps a source connected and its newest frame in `slot`, until stopped or the file ends."""

    def __init__(
        self,
        make_source: Callable[[], Source],
        slot: LatestSlot[Frame],
        *,
        open_timeout_s: float = 10.0,
        read_timeout_s: float = 5.0,
        backoff_min_s: float = 0.5,
        backoff_max_s: float = 30.0,
        on_event: EventSink | None = None,
    ):
        self.make_source = make_source
        self.slot = slot
        self.open_timeout_s = open_timeout_s
        self.read_timeout_s = read_timeout_s
        self.backoff_min_s = backoff_min_s
        self.backoff_max_s = backoff_max_s
        self.on_event = on_event or (lambda kind, message, detail: None)
        self.state = "connecting"  # connecting | streaming | lost | ended | stopped
        self.last_error: str | None = None
        self.losses = 0
        self.describe = ""
        self._seq = itertools.count(1)
        self._stop = threading.Event()
        self._stuck: list[_Reader] = []
        self._lost_since: float | None = None
        self._thread = threading.Thread(target=self._supervise, name="edgewatch-capture", daemon=True)

    @property
    def ended(self) -> bool:
        return self.state == "ended"

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        self.state = "stopped"

    def _report(self, kind: str, message: str, **detail) -> None:
        level = logging.WARNING if kind == "source_lost" else logging.INFO
        log.log(level, "%s", message)
        try:
            self.on_event(kind, message, detail)
        except Exception:  # noqa: BLE001 - reporting must never stop capture
            log.exception("reporting %s", kind)

    def _abandon(self, reader: _Reader) -> None:
        reader.cancelled = True
        if not reader.done.is_set():
            self._stuck.append(reader)

    def _wait_for_stuck(self) -> None:
        self._stuck = [r for r in self._stuck if not r.done.is_set()]
        while len(self._stuck) >= MAX_STUCK_READERS and not self._stop.is_set():
            self._stop.wait(1.0)
            self._stuck = [r for r in self._stuck if not r.done.is_set()]

    def _supervise(self) -> None:
        backoff = self.backoff_min_s
        while not self._stop.is_set():
            self._wait_for_stuck()
            if self._stop.is_set():
                break
            reader = None
            try:
                source = self.make_source()
                self.describe = source.describe()
            except Exception as exc:  # noqa: BLE001 - a bad source spec is a loss too; keep trying
                reason = one_line(exc)
            else:
                reader = _Reader(source, self.slot, self._seq)
                reader.start()
                reason = self._run_connection(reader)
            if reason is None:  # stopped, or the file ended
                break
            self.last_error = reason
            if reader is not None and reader.frames > 0:
                backoff = self.backoff_min_s  # it streamed: a fresh failure, start the backoff over
            if self._lost_since is None:  # once per outage, not once per retry
                self._lost_since = time.monotonic()
                self.losses += 1
                self._report("source_lost", f"camera lost: {reason}; reconnecting", source=self.describe,
                             reason=reason, retry_in_s=round(backoff, 2))
            else:
                log.debug("still no camera (%s); retrying in %.1f s", reason, backoff)
            self.state = "lost"
            self._stop.wait(backoff)
            backoff = min(backoff * 2, self.backoff_max_s)
        if self.state != "ended":
            self.state = "stopped"

    def _run_connection(self, reader: _Reader) -> str | None:
        """Supervise one reader. None when stopped or the file ended, else why it was lost."""
        deadline = time.monotonic() + self.open_timeout_s
        while not reader.opened.is_set():
            if reader.done.is_set():
                return reader.error or "ended before the first frame"
            if self._stop.is_set():
                self._abandon(reader)
                return None
            if time.monotonic() > deadline:
                self._abandon(reader)
                return f"open timed out after {self.open_timeout_s:g} s"
            reader.opened.wait(0.05)
        announced = False
        while not self._stop.is_set():
            if reader.done.wait(0.1):
                break
            if reader.frames and not announced:
                announced = True
                if self._lost_since is not None:
                    down = time.monotonic() - self._lost_since
                    self._lost_since = None
                    self._report("source_recovered", f"camera recovered after {down:.1f} s: {reader.source.describe()}",
                                 source=reader.source.describe(), down_s=round(down, 2), losses=self.losses)
                self.state = "streaming"
            if time.monotonic() - reader.last_frame > self.read_timeout_s:
                self._abandon(reader)
                return f"no frame for {self.read_timeout_s:g} s"
        if self._stop.is_set():
            self._abandon(reader)
            return None
        if reader.ended:
            self.state = "ended"
            self._report("source_ended", f"end of {reader.source.describe()}", source=reader.source.describe())
            return None
        return reader.error or "reader stopped"
