"""Constant-velocity Kalman filters on boxes, one per track, held as arrays and run all at once.

The state of a box is its centre x, centre y, width and height, each with a velocity in pixels per
second. With a diagonal process and measurement noise these four components never correlate, so
each filter is four independent 2x2 (position, velocity) filters: the covariance is kept as its
three distinct entries per component, and predict and update are a few elementwise operations on
(N, 4) arrays, with no matrix inverse. Times are seconds of capture time: frames may come at any
rate (a slow model, a rate cap, a paused pipeline) and the prediction follows the clock.

Noise scales with the box's height, so a far, small person and a near, large one are held to the
same relative precision.
"""

from __future__ import annotations

import numpy as np

# Measurement noise: a detector places a box's edges to about 5 % of its height.
MEASUREMENT_STD = 0.05
# Process noise, as white acceleration (box heights per second squared) of the centre and of the
# size: a walker changes pace or turns within a second; a box's size changes slowly.
ACCELERATION_STD = np.array([0.2, 0.2, 0.1, 0.1])
# A new track's velocity is unknown: up to a few box heights per second (a car crossing the view).
INITIAL_VELOCITY_STD = 1.5
MIN_SIZE = 1.0  # pixels: a degenerate box must not make the noise vanish


def xyxy_to_cxcywh(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    wh = np.maximum(boxes[:, 2:] - boxes[:, :2], MIN_SIZE)
    return np.concatenate([boxes[:, :2] + wh / 2, wh], axis=1)


def cxcywh_to_xyxy(state: np.ndarray) -> np.ndarray:
    half = np.maximum(state[:, 2:], MIN_SIZE) / 2
    return np.concatenate([state[:, :2] - half, state[:, :2] + half], axis=1)


class BoxMotion:
    """N filters, in the order their boxes were added (`keep` drops rows, `add` appends)."""

    def __init__(self) -> None:
        self.pos = np.zeros((0, 4))  # cx, cy, w, h
        self.vel = np.zeros((0, 4))  # their rates, pixels per second
        # Covariance per component: var(position), cov(position, velocity), var(velocity).
        self.p_pp = np.zeros((0, 4))
        self.p_pv = np.zeros((0, 4))
        self.p_vv = np.zeros((0, 4))

    def __len__(self) -> int:
        return len(self.pos)

    def add(self, boxes: np.ndarray) -> None:
        """New filters at these xyxy boxes, at rest, with the velocity unknown."""
        z = xyxy_to_cxcywh(boxes)
        scale = z[:, 3:4]
        self.pos = np.concatenate([self.pos, z])
        self.vel = np.concatenate([self.vel, np.zeros_like(z)])
        self.p_pp = np.concatenate([self.p_pp, np.broadcast_to((2 * MEASUREMENT_STD * scale) ** 2, z.shape)])
        self.p_pv = np.concatenate([self.p_pv, np.zeros_like(z)])
        self.p_vv = np.concatenate([self.p_vv, np.broadcast_to((INITIAL_VELOCITY_STD * scale) ** 2, z.shape)])

    def keep(self, mask: np.ndarray) -> None:
        self.pos, self.vel = self.pos[mask], self.vel[mask]
        self.p_pp, self.p_pv, self.p_vv = self.p_pp[mask], self.p_pv[mask], self.p_vv[mask]

    def predict(self, dt: np.ndarray) -> None:
        """Move every filter `dt` seconds ahead ((N,) array: each track since its own last step)."""
        dt = np.asarray(dt, np.float64).reshape(-1, 1)
        scale = np.maximum(self.pos[:, 3:4], MIN_SIZE)
        q = (ACCELERATION_STD * scale) ** 2  # (N, 4)
        self.pos = self.pos + self.vel * dt
        self.p_pp = self.p_pp + dt * (2 * self.p_pv + dt * self.p_vv) + q * dt**3 / 3
        self.p_pv = self.p_pv + dt * self.p_vv + q * dt**2 / 2
        self.p_vv = self.p_vv + q * dt
        # A box cannot shrink below a pixel, whatever its size's velocity says.
        np.maximum(self.pos[:, 2:], MIN_SIZE, out=self.pos[:, 2:])

    def update(self, rows: np.ndarray, boxes: np.ndarray) -> None:
        """Correct the filters at `rows` with measured xyxy `boxes` (one per row)."""
        if len(rows) == 0:
            return
        z = xyxy_to_cxcywh(boxes)
        r = (MEASUREMENT_STD * z[:, 3:4]) ** 2
        pp, pv, vv = self.p_pp[rows], self.p_pv[rows], self.p_vv[rows]
        s = pp + r
        k_pos, k_vel = pp / s, pv / s
        innovation = z - self.pos[rows]
        self.pos[rows] += k_pos * innovation
        self.vel[rows] += k_vel * innovation
        self.p_pp[rows] = (1 - k_pos) * pp
        self.p_pv[rows] = (1 - k_pos) * pv
        self.p_vv[rows] = vv - k_vel * pv

    def stop(self, rows: np.ndarray) -> None:
        """Hold the filters at `rows` still (a stationary object does not drift while unseen)."""
        self.vel[rows] = 0.0
        self.p_pv[rows] = 0.0

    def boxes(self) -> np.ndarray:
        """Every filter's box, xyxy."""
        return cxcywh_to_xyxy(self.pos)

    def position_std(self) -> np.ndarray:
        """(N,) how uncertain each centre is, pixels (the larger of its x and y standard deviations)."""
        return np.sqrt(np.maximum(self.p_pp[:, 0], self.p_pp[:, 1]))
