"""TUD-Stadtmitte's pedestrian ground truth (it ships inside the `motmetrics` package) and a seeded
simulated detector that turns it into the detections a real one would give: jittered boxes, single
misses, occlusions, low scores and false positives.

Only the data file is read here, never the package imported: tests use these trajectories on a
board's venv (and under emulation) without motmetrics' pandas.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...detections import Detections

TUD_FPS = 25.0
TUD_SIZE = (640, 480)  # width, height


class GroundTruthMissing(RuntimeError):
    """The motmetrics package (and with it the TUD-Stadtmitte ground truth) is not installed."""


@dataclass(frozen=True)
class Frame:
    """One ground-truth frame: its number (from 1), time (s) and the people in it."""

    number: int
    time: float
    ids: np.ndarray  # (N,) int
    xyxy: np.ndarray  # (N, 4) float, pixels


def tud_file() -> Path:
    """The TUD-Stadtmitte gt.txt inside the installed motmetrics package (found, not imported)."""
    spec = importlib.util.find_spec("motmetrics")
    if spec is None or not spec.submodule_search_locations:
        raise GroundTruthMissing("the motmetrics package is not installed (pip install motmetrics: the dev extra has it)")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "TUD-Stadtmitte" / "gt.txt"
    if not path.is_file():
        raise GroundTruthMissing(f"{path}: missing from the installed motmetrics package")
    return path


def load_tud(path: Path | None = None) -> list[Frame]:
    """Every frame of TUD-Stadtmitte (179 frames, 10 people, 640x480 at 25 fps), in order."""
    rows = np.loadtxt(path or tud_file(), delimiter=",", ndmin=2)
    frames = []
    for number in np.unique(rows[:, 0]).astype(int):
        r = rows[rows[:, 0] == number]
        xyxy = np.stack([r[:, 2], r[:, 3], r[:, 2] + r[:, 4], r[:, 3] + r[:, 5]], axis=1)
        frames.append(Frame(int(number), (number - 1) / TUD_FPS, r[:, 1].astype(int), xyxy))
    return frames


@dataclass(frozen=True)
class SimulatedDetector:
    """A detector that sees the ground truth imperfectly, the same way for a given seed."""

    jitter: float = 0.05  # box noise, standard deviation as a fraction of the box's size
    miss: float = 0.10  # a person missed in a single frame
    occlusion_start: float = 0.04  # per person per frame: an occlusion starts ...
    occlusion_frames: tuple[int, int] = (2, 5)  # ... and hides the person this many frames
    low_share: float = 0.15  # boxes seen only at a low score ...
    low_scores: tuple[float, float] = (0.15, 0.5)  # ... in this range
    high_scores: tuple[float, float] = (0.5, 0.95)
    false_positives: float = 0.3  # per frame (Poisson), anywhere, person-sized, any score
    false_scores: tuple[float, float] = (0.15, 0.8)

    def run(self, frames: list[Frame], seed: int, step: int = 2,
            size: tuple[int, int] = TUD_SIZE) -> list[tuple[float, Detections]]:
        """(time, detections) for every `step`-th frame (a detector slower than the camera)."""
        rng = np.random.default_rng(seed)
        hidden: dict[int, int] = {}  # person -> detector frames still occluded
        sizes = np.concatenate([f.xyxy[:, 2:] - f.xyxy[:, :2] for f in frames])
        out = []
        for frame in frames[::step]:
            boxes, scores = [], []
            for pid, box in zip(frame.ids.tolist(), frame.xyxy):
                if hidden.get(pid, 0) > 0:
                    hidden[pid] -= 1
                    continue
                if rng.random() < self.occlusion_start:
                    lo, hi = self.occlusion_frames
                    hidden[pid] = int(rng.integers(lo, hi + 1)) - 1  # this frame is the run's first
                    continue
                if rng.random() < self.miss:
                    continue
                w, h = box[2] - box[0], box[3] - box[1]
                cx, cy = (box[0] + box[2]) / 2 + rng.normal(0, self.jitter * w), (box[1] + box[3]) / 2 + rng.normal(0, self.jitter * h)
                w, h = w * (1 + rng.normal(0, self.jitter)), h * (1 + rng.normal(0, self.jitter))
                boxes.append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
                band = self.low_scores if rng.random() < self.low_share else self.high_scores
                scores.append(rng.uniform(*band))
            for _ in range(rng.poisson(self.false_positives)):
                w, h = sizes[rng.integers(len(sizes))]
                x, y = rng.uniform(0, size[0] - w), rng.uniform(0, size[1] - h)
                boxes.append((x, y, x + w, y + h))
                scores.append(rng.uniform(*self.false_scores))
            xyxy = np.array(boxes, np.float32).reshape(-1, 4)
            out.append((frame.time, Detections(xyxy, np.array(scores, np.float32), np.zeros(len(scores), np.int32))))
        return out
