"""Cumulative histograms of the pipeline's timings, for the life of the daemon (Prometheus buckets:
each count is of observations <= its bound, the last one +Inf). Fixed size whatever the run time."""

from __future__ import annotations

from bisect import bisect_left

from ..health import HistogramSnapshot

# Seconds. Invoke: from a fast x86 core to a Pi 3. Frame age: capture to the end of inference.
INVOKE_BOUNDS_S = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0)
FRAME_AGE_BOUNDS_S = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0)


class Histogram:
    """Not locked: the caller observes and snapshots under its own lock."""

    def __init__(self, bounds: tuple[float, ...]):
        if list(bounds) != sorted(set(bounds)):
            raise ValueError(f"histogram bounds must rise strictly, got {bounds}")
        self.bounds = tuple(bounds)
        self._counts = [0] * (len(bounds) + 1)
        self._sum = 0.0

    def observe(self, value: float) -> None:
        self._counts[bisect_left(self.bounds, value)] += 1
        self._sum += value

    def snapshot(self) -> HistogramSnapshot:
        running, cumulative = 0, []
        for n in self._counts:
            running += n
            cumulative.append(running)
        return HistogramSnapshot(self.bounds, tuple(cumulative), self._sum)
