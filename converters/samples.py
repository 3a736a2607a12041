"""Calibration and held-out frames from a folder of images or a video, never overlapping.

Calibration frames set the int8 ranges; held-out frames, which calibration never saw, measure the
fidelity the report states. A video gives calibration frames spread over its first half and
held-out frames over its second; a folder interleaves its sorted files (even: calibration, odd:
held-out), so both sets cover the whole folder.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import SourceError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}


@dataclass
class Samples:
    calibration: list[np.ndarray]  # BGR uint8 frames
    held_out: list[np.ndarray]
    description: dict = field(default_factory=dict)  # for the report: where the frames came from


def _spread(start: int, stop: int, count: int) -> list[int]:
    if count <= 0 or stop <= start:
        return []
    count = min(count, stop - start)
    return sorted({int(i) for i in np.linspace(start, stop - 1, count).round()})


def _from_video(path: Path, samples: int, held_out: int) -> Samples:
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise SourceError(f"{path}: cannot open as a video or read as a folder of images")
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    if total <= 1:  # some containers do not say: count by reading
        total = 0
        while cap.grab():
            total += 1
        cap.release()
        cap = cv2.VideoCapture(str(path))
    if total < 2:
        raise SourceError(f"{path}: the video has {total} frame(s); calibration needs at least 2")
    split = total // 2
    cal_idx, held_idx = _spread(0, split, samples), _spread(split, total, held_out)
    wanted = {i: "c" for i in cal_idx} | {i: "h" for i in held_idx}
    cal, held = [], []
    last = max(wanted)
    for i in range(last + 1):
        if i not in wanted:
            if not cap.grab():
                break
            continue
        ok, frame = cap.read()
        if not ok:
            break
        (cal if wanted[i] == "c" else held).append(frame)
    cap.release()
    if len(cal) < len(cal_idx) or len(held) < len(held_idx):
        raise SourceError(f"{path}: the video ended early (read {len(cal)} + {len(held)} of {len(wanted)} frames)")
    return Samples(cal, held, {"path": str(path), "kind": "video", "frames": total,
                               "calibration_frames": cal_idx, "held_out_frames": held_idx})


def _from_folder(path: Path, samples: int, held_out: int) -> Samples:
    import cv2

    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if len(files) < 2:
        raise SourceError(f"{path}: the calibration folder has {len(files)} image(s); it needs at least 2 ({', '.join(sorted(IMAGE_SUFFIXES))})")

    def read(chosen: list[Path]) -> list[np.ndarray]:
        frames = []
        for p in chosen:
            img = cv2.imread(str(p), cv2.IMREAD_COLOR)
            if img is None:
                log.warning("%s: not a readable image, skipped", p)
                continue
            frames.append(img)
        return frames

    # The video's rule: calibration from the first half, held-out from the second, each spread
    # over its half. Neighbouring files (frames exported from one camera) never end up on both sides.
    split = len(files) // 2 if held_out else len(files)
    cal_files = [files[i] for i in _spread(0, split, samples)]
    held_files = [files[i] for i in _spread(split, len(files), held_out)] if held_out else []
    cal, held = read(cal_files), read(held_files)
    if not cal or (held_out and not held):
        raise SourceError(f"{path}: no readable images for {'calibration' if not cal else 'held-out samples'}")
    return Samples(cal, held, {"path": str(path), "kind": "folder", "files": len(files),
                               "calibration_files": [p.name for p in cal_files], "held_out_files": [p.name for p in held_files]})


def load_samples(path: Path, samples: int, held_out: int) -> Samples:
    path = Path(path)
    if samples < 1 or held_out < 1:
        raise SourceError(f"--samples and --held-out must be at least 1 (got {samples} and {held_out})")
    if not path.exists():
        raise SourceError(f"{path}: calibration folder or video not found")
    if path.is_dir():
        return _from_folder(path, samples, held_out)
    return _from_video(path, samples, held_out)
