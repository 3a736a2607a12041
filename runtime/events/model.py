"""What the event log stores: an `Event` (one tracked object, from first to last sight), a
`SystemEvent` (a budget decision, a lost source, a reload) and the `Retention` policy."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .times import iso

Box = tuple[float, float, float, float]
# A trajectory point: seconds since the event's start, then the box (x1, y1, x2, y2) in pixels.
Point = tuple[float, int, int, int, int]


@dataclass(frozen=True, slots=True)
class Event:
    """One tracked object. `start`/`end` are unix seconds (wall clock); `end` is None while it is
    in view. `score` is the best seen so far and `box` (xyxy, source pixels) goes with it.
    `trajectory`: its path, at most a few points a second; `zones`: the `[detect] zones` it
    entered, in order; `stationary`: it stayed in place for the tracker's `stationary_after_s`."""

    id: str
    label: str
    class_id: int
    score: float
    start: float
    end: float | None
    box: Box
    snapshot: str | None = None
    source: str = ""
    model: str = ""
    last_seen: float | None = None  # wall clock of the last detection
    recovered: bool = False  # closed on start-up after the run that saw it was cut short
    trajectory: tuple[Point, ...] = ()
    zones: tuple[str, ...] = ()
    stationary: bool = False

    def __post_init__(self) -> None:
        # Checked here, once, so that a bad event is the caller's error and never a writer-thread failure.
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"Event.id: must be a non-empty string, got {self.id!r}")
        if not math.isfinite(self.score) or not math.isfinite(self.start):
            raise ValueError(f"Event {self.id}: score and start must be finite, got {self.score!r}, {self.start!r}")
        if len(self.box) != 4:
            raise ValueError(f"Event {self.id}: box must be 4 numbers (x1, y1, x2, y2), got {self.box!r}")

    def to_dict(self, trajectory: bool = True) -> dict[str, Any]:
        """The one JSON shape of an event: `edgewatch events --json`, and journal lines (those
        without the trajectory: a line per event start and end must stay short)."""
        out = {
            "id": self.id,
            "label": self.label,
            "class_id": int(self.class_id),
            "score": round(float(self.score), 4),
            "start": iso(self.start),
            "end": iso(self.end),
            "box": [round(float(v), 1) for v in self.box],
            "snapshot": self.snapshot,
            "source": self.source,
            "model": self.model,
            "recovered": self.recovered,
            "stationary": bool(self.stationary),
            "zones": list(self.zones),
        }
        if trajectory:
            out["trajectory"] = [list(p) for p in self.trajectory]
        return out


@dataclass(frozen=True, slots=True)
class SystemEvent:
    """Something the daemon did or suffered, kept next to the detections for later diagnosis."""

    kind: str
    message: str
    detail: dict[str, Any]
    time: float

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "detail": self.detail, "time": iso(self.time)}


@dataclass(frozen=True, slots=True)
class Retention:
    """Keep events at most `max_age_days` old and the log (database rows plus snapshot files) within
    `max_bytes`; None disables a limit. System events are kept by age and up to `max_system_events`."""

    max_age_days: float | None = 30.0
    max_bytes: int | None = 512 * 1024 * 1024
    max_system_events: int = 10_000

    def __post_init__(self) -> None:
        if self.max_age_days is not None and not self.max_age_days > 0:
            raise ValueError(f"retention.max_age_days: must be > 0, got {self.max_age_days!r}")
        if self.max_bytes is not None and not self.max_bytes > 0:
            raise ValueError(f"retention.max_bytes: must be > 0, got {self.max_bytes!r}")
        if self.max_system_events < 1:
            raise ValueError(f"retention.max_system_events: must be >= 1, got {self.max_system_events!r}")
