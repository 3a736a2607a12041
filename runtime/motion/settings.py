"""The motion stage's settings (the `[motion]` config section)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class MotionConfig:
    enabled: bool = True
    frame_height: int = 72
    threshold: float = 15.0
    noise_factor: float = 4.0
    min_pixels: int = 3
    learn_s: float = 10.0
    absorb_s: float = 10.0
    relearn_share: float = 0.5
    settle_s: float = 1.0
    mask: Path | None = None
    keepalive_s: float = 5.0
    track_refresh_s: float = 0.5
    regions: bool = False
