"""The gate: which frames go to the model.

    gate = Gate(keepalive_s=5.0, track_refresh_s=0.5)
    decision = gate.decide(now, motion, live_tracks)    # motion: a Motion, or None (motion off)
    if decision.infer: ...                               # decision.reason says why

In order:
- motion in the frame: every frame (an object that moves is seen at the camera's rate);
- no motion, but tracks alive: one frame every `track_refresh_s`, so a stationary object stays
  tracked (the tracker drops what it has not seen for `max_missed_s`, which must be longer) and
  an object that left ends its event on time;
- the motion model (re)learning the scene (start, a sudden global change): as for tracks, since
  motion cannot be told then;
- otherwise one frame every `keepalive_s`: an object that arrived without motion (standing there
  when the daemon started, or while the scene was relearned) is found within that time.

Time is passed in (the frame's capture time), so the policy is deterministic and testable.
`GateStats` keeps the figures status.json reports: the share of frames with motion and the share
sent to the model (the inference duty), over a recent window and since the start.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass

from ..health import MotionHealth
from .detector import Motion

MOTION, TRACKS, SETTLING, KEEPALIVE, GATED, UNGATED = "motion", "tracks", "settling", "keepalive", "gated", "ungated"
REASONS = (MOTION, TRACKS, SETTLING, KEEPALIVE)
ACTIVE_S = 5.0  # the "active" share: motion over the last few seconds, like the pipeline's fps


@dataclass(frozen=True)
class Decision:
    infer: bool
    reason: str  # motion | tracks | settling | keepalive | gated | ungated (motion off: every frame)


class Gate:
    def __init__(self, keepalive_s: float, track_refresh_s: float):
        self.keepalive_s = keepalive_s
        self.track_refresh_s = track_refresh_s
        self._last_sent = -math.inf

    def decide(self, now: float, motion: Motion | None, live_tracks: int) -> Decision:
        """Whether the frame captured at `now` goes to the model. A yes counts as sent."""
        if motion is None:
            reason = UNGATED
        elif motion.moving:
            reason = MOTION
        elif live_tracks and now - self._last_sent >= self.track_refresh_s:
            reason = TRACKS
        elif not motion.settled and now - self._last_sent >= self.track_refresh_s:
            reason = SETTLING
        elif now - self._last_sent >= self.keepalive_s:
            reason = KEEPALIVE
        else:
            return Decision(False, GATED)
        self._last_sent = now
        return Decision(True, reason)

    def forget(self) -> None:
        """The next frame goes to the model whatever it shows (a new model, a reloaded config)."""
        self._last_sent = -math.inf


class GateStats:
    """Counts of gate decisions: since the start, and over the last `window_s` of frames. Written by
    the pipeline's prepare thread, read by whoever asks for health: `_lock` guards everything."""

    def __init__(self, window_s: float = 60.0, max_frames: int = 3600):
        self.window_s = window_s
        self._lock = threading.Lock()
        self._recent: deque[tuple[float, bool, bool]] = deque(maxlen=max_frames)  # (t, moving, sent)
        self.frames = 0
        self.moving = 0
        self.sent = 0
        self.by_reason: dict[str, int] = {r: 0 for r in (*REASONS, UNGATED)}
        self.relearned = 0
        self.regions = 0
        self.state = ""

    def record(self, t: float, motion: Motion | None, decision: Decision) -> None:
        with self._lock:
            moving = motion is not None and motion.moving
            self.frames += 1
            self.moving += moving
            if decision.infer:
                self.sent += 1
                self.by_reason[decision.reason] += 1
            self._recent.append((t, moving, decision.infer))
            if motion is not None:
                if motion.state == "relearning" and self.state != "relearning":
                    self.relearned += 1
                self.state = motion.state

    def cropped(self) -> None:
        """A frame went to the model as crops around motion (regions)."""
        with self._lock:
            self.regions += 1

    def shares(self, window_s: float | None = None) -> tuple[float | None, float | None]:
        """(motion share, inference duty) over the `window_s` (default: the stats' own) of capture
        time up to the latest frame (a replay's times are its own); None before the first frame."""
        window_s = self.window_s if window_s is None else window_s
        with self._lock:
            now = self._recent[-1][0] if self._recent else 0.0
            recent = [(m, s) for t, m, s in self._recent if now - t <= window_s]
        if not recent:
            return None, None
        n = len(recent)
        return sum(m for m, _ in recent) / n, sum(s for _, s in recent) / n

    def health(self, enabled: bool = True) -> MotionHealth:
        motion, duty = self.shares()
        active, _ = self.shares(ACTIVE_S)
        with self._lock:
            return MotionHealth(enabled=enabled, state=self.state if enabled else "off",
                                motion_share=None if motion is None else round(motion, 3),
                                inference_duty=None if duty is None else round(duty, 3),
                                active=None if active is None else round(active, 3), window_s=self.window_s,
                                frames=self.frames, moving=self.moving, sent_by_reason=dict(self.by_reason),
                                relearned=self.relearned, regions=self.regions)
