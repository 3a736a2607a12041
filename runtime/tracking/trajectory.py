"""A track's compact path: its box at most every `interval_s`, never unbounded.

A sample is kept when `interval_s` has passed since the last one and the box has moved by more
than a tenth of its height (an object standing still adds nothing until it moves again). The last
observation is always kept apart, so the path ends where the object was last seen. Past
`max_points` every other sample is dropped and the interval doubles: an object in view for hours
costs as much as one in view for minutes, at a coarser step.
"""

from __future__ import annotations

import numpy as np

MOVE_FRACTION = 0.1  # of the box's height: less than this since the last sample is standing still
MAX_POINTS = 256


class Trajectory:
    def __init__(self, interval_s: float, max_points: int = MAX_POINTS):
        if interval_s <= 0 or max_points < 2:
            raise ValueError("Trajectory: interval_s must be > 0 and max_points >= 2")
        self.interval_s = interval_s
        self.max_points = max_points
        self._points: list[tuple[float, float, float, float, float]] = []  # (wall, x1, y1, x2, y2)
        self._last: tuple[float, float, float, float, float] | None = None

    def add(self, wall: float, box: np.ndarray) -> None:
        x1, y1, x2, y2 = (float(v) for v in box)
        point = (wall, x1, y1, x2, y2)
        self._last = point
        if self._points:
            t0, a1, b1, a2, b2 = self._points[-1]
            if wall - t0 < self.interval_s:
                return
            moved = max(abs(x1 + x2 - a1 - a2), abs(y1 + y2 - b1 - b2)) / 2
            if moved < MOVE_FRACTION * max(y2 - y1, 1.0):
                return
        self._points.append(point)
        if len(self._points) > self.max_points:
            self._points = self._points[::2]
            self.interval_s *= 2

    def points(self, start: float) -> tuple[tuple[float, int, int, int, int], ...]:
        """(seconds since `start`, x1, y1, x2, y2 rounded to pixels), oldest first, ending at the last sight."""
        points = list(self._points)
        if self._last is not None and (not points or self._last[0] > points[-1][0]):
            points.append(self._last)
        return tuple((round(t - start, 2), round(x1), round(y1), round(x2), round(y2)) for t, x1, y1, x2, y2 in points)

    def __len__(self) -> int:
        return len(self._points) + (self._last is not None and (not self._points or self._last[0] > self._points[-1][0]))
