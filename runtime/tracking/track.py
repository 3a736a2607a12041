"""One tracked object (`Track`) and what happened to it in a frame (`TrackUpdate`)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from .trajectory import Trajectory

Kind = Literal["start", "update", "end"]


def new_event_id(wall: float) -> str:
    """Sortable by start time (milliseconds, hex) and unique across restarts (random suffix)."""
    return f"{int(wall * 1000):011x}-{secrets.token_hex(3)}"


@dataclass(eq=False)
class Track:
    """An object from its first detection on. It is an event once `started`; `box` and `score` are
    its last detection's (source pixels, xyxy), `best_box` goes with `best_score`. Times: `wall`
    (unix seconds) for events, `mono` (capture monotonic) for the tracker's own clock."""

    id: str
    class_id: int
    box: np.ndarray
    score: float
    best_score: float
    best_box: np.ndarray
    first_seen: float  # wall clock of the first detection
    last_seen: float  # wall clock of the last detection
    last_seen_mono: float
    first_seen_mono: float
    trajectory: Trajectory
    hits: int = 1  # confident detections (at min_score or above)
    misses: int = 0  # frames in a row without a detection
    started: bool = False
    stationary: bool = False  # stayed in place for the tracker's stationary_after_s at some point
    improved: bool = field(default=False, repr=False)  # best score rose in the last update
    # Where it was when it last moved (filtered centre, pixels) and since when (mono).
    anchor: tuple[float, float] = field(default=(0.0, 0.0), repr=False)
    anchor_mono: float = field(default=0.0, repr=False)

    def still(self, after_s: float) -> bool:
        """Whether it had stayed in place for `after_s` when last seen."""
        return self.started and self.last_seen_mono - self.anchor_mono >= after_s


@dataclass(frozen=True)
class TrackUpdate:
    kind: Kind
    track: Track
