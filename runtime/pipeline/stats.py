"""The pipeline's running figures: counts, frame rate, invoke time, frame age at detection.

Everything here is bounded (fixed-size windows), since the daemon runs for months.
"""

from __future__ import annotations

import threading
from collections import deque

import numpy as np

from ..health import HistogramSnapshot
from .histogram import FRAME_AGE_BOUNDS_S, INVOKE_BOUNDS_S, Histogram

WINDOW = 256  # inferences kept for the rate and age figures


class PipelineStats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.inferred = 0
        self.errors = 0
        self.last_error: str | None = None
        self.invoke_ms = 0.0
        self.invoke_total_s = 0.0  # time spent in invoke, all told: pipeline fps x this = model busy share
        self._times: deque[float] = deque(maxlen=WINDOW)
        self._ages: deque[float] = deque(maxlen=WINDOW)
        # For the daemon's whole life, for /metrics (the windows above are for the recent rate).
        self._invoke_hist = Histogram(INVOKE_BOUNDS_S)
        self._age_hist = Histogram(FRAME_AGE_BOUNDS_S)
        self._first: float | None = None

    def inference(self, done_mono: float, age_s: float, invoke_ms: float) -> None:
        with self._lock:
            self.inferred += 1
            if self._first is None:
                self._first = done_mono
            self.invoke_total_s += invoke_ms / 1e3
            self._times.append(done_mono)
            self._ages.append(age_s)
            self._invoke_hist.observe(invoke_ms / 1e3)
            self._age_hist.observe(age_s)
            # A light smoothing: one slow invoke should not swing the monitor's decisions.
            self.invoke_ms = invoke_ms if self.inferred == 1 else 0.8 * self.invoke_ms + 0.2 * invoke_ms

    def error(self, message: str) -> None:
        with self._lock:
            self.errors += 1
            self.last_error = message

    def fps(self, now_mono: float, horizon_s: float = 5.0, sparse_horizon_s: float = 30.0) -> float:
        """Inferences per second over the last `horizon_s`; over `sparse_horizon_s` when fewer than
        three fall in the short one (a motion-gated pipeline at its keep-alive rate runs one every
        few seconds, and that rate is real: the power model needs it, not a zero)."""
        with self._lock:
            first = self._first
            times = [t for t in self._times if now_mono - t <= sparse_horizon_s]
        if first is None:
            return 0.0
        recent = [t for t in times if now_mono - t <= horizon_s]
        count, horizon = (len(recent), horizon_s) if len(recent) >= 3 else (len(times), sparse_horizon_s)
        # since the first inference, when that is shorter (no more than a second's credit)
        return count / min(horizon, max(now_mono - first, 1.0))

    def ages_ms(self) -> tuple[float, float]:
        """Frame age at detection over the recent window: (p50, p95) in ms."""
        with self._lock:
            ages = np.array(self._ages, np.float64) * 1e3
        if not len(ages):
            return 0.0, 0.0
        return round(float(np.percentile(ages, 50)), 1), round(float(np.percentile(ages, 95)), 1)

    def histograms(self) -> tuple[HistogramSnapshot, HistogramSnapshot]:
        """Invoke time and frame age (s), cumulative since start."""
        with self._lock:
            return self._invoke_hist.snapshot(), self._age_hist.snapshot()

    def last_inference(self) -> float | None:
        with self._lock:
            return self._times[-1] if self._times else None
