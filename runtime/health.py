"""What the pipeline reports about itself: one typed snapshot, taken whole by `Pipeline.health()`.

The daemon (status.json, sd_notify, its loop), the resource monitor and the local page read this
and nothing else of the pipeline, so what a reader may rely on is written down here. It sits low
in the layers (it imports nothing of the runtime) so that the monitor, below the pipeline, can
read it too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelHealth:
    """The model serving now; `path` is the bundle resolved at load (a rollout checks it)."""

    path: str
    name: str
    variant: str
    sha256: str
    threads: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SourceHealth:
    name: str  # the camera's label, recorded with every event
    state: str  # connecting | streaming | lost | ended | stopped
    description: str  # what the source says it is (device, size, rate)
    losses: int
    last_error: str | None = None


@dataclass(frozen=True)
class FrameCounts:
    captured: int = 0
    inferred: int = 0
    dropped: int = 0
    errors: int = 0


@dataclass(frozen=True)
class HistogramSnapshot:
    """Cumulative counts since start, Prometheus-style: `cumulative[i]` observations were <=
    `bounds[i]`; the last, one longer than the bounds, counts them all (+Inf)."""

    bounds: tuple[float, ...] = ()
    cumulative: tuple[int, ...] = (0,)
    sum: float = 0.0

    @property
    def count(self) -> int:
        return self.cumulative[-1]


@dataclass(frozen=True)
class MotionHealth:
    """The motion gate: how much of the scene moves, and how much of it the model is shown."""

    enabled: bool
    state: str  # learning | watching | relearning ("" before the first frame, "off" when disabled)
    motion_share: float | None = None  # frames with motion, over the last window_s (None: no frame yet)
    inference_duty: float | None = None  # frames sent to the model, over the last window_s
    active: float | None = None  # frames with motion over the last few seconds (what the budget weighs)
    window_s: float = 60.0
    frames: int = 0  # looked at since the start
    moving: int = 0
    sent_by_reason: dict[str, int] = field(default_factory=dict)  # motion, tracks, settling, keepalive, ungated
    relearned: int = 0  # sudden global changes the background was learned anew after
    regions: int = 0  # frames the model saw as crops around motion

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PipelineHealth:
    model: ModelHealth
    source: SourceHealth
    frames: FrameCounts = field(default_factory=FrameCounts)
    fps: float = 0.0  # inferences per second, over the last few seconds
    invoke_ms: float = 0.0  # smoothed
    frame_age_ms: tuple[float, float] = (0.0, 0.0)  # capture to detections, p50 and p95
    invoke_seconds: HistogramSnapshot = field(default_factory=HistogramSnapshot)  # since start, for /metrics
    frame_age_seconds: HistogramSnapshot = field(default_factory=HistogramSnapshot)
    cpu_percent: float | None = None  # this process, 100 = one core
    rss_mb: float | None = None
    open_events: int = 0
    rate_limit: float | None = None  # the binding one: config's max_fps or the budget's
    paused: bool = False
    ready: bool = False  # a first inference has succeeded
    alive: bool = True  # both pipeline threads are running
    heartbeat: float = 0.0  # monotonic time the less recent thread last went round its loop
    since_inference_s: float | None = None  # None: no inference yet
    finished: bool = False  # the source ended and every frame it gave was processed
    last_error: str | None = None
    motion: MotionHealth | None = None
