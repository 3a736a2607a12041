"""`edgewatch detect MODEL INPUT...`: detections on images, folders of images, or videos."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Iterator

import numpy as np

from .. import exitcodes

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
VIDEO_SUFFIXES = {".avi", ".mp4", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg", ".h264"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="bundle folder, model.json, or a .tflite (with --labels)")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="images, folders of images, or videos")
    p.add_argument("--labels", help="labels file, one per line (for a bare .tflite)")
    p.add_argument("--variant", help="bundle variant (default: the bundle's default)")
    p.add_argument("--threads", type=int, help="interpreter threads (default: all cores)")
    p.add_argument("--score", type=float, dest="score_threshold", help="minimum score (default: the manifest's)")
    p.add_argument("--json", action="store_true", help="one JSON object per image or frame")
    p.add_argument("--annotate", metavar="OUT", help="write pictures with boxes and labels into this folder")
    p.add_argument("--every", type=int, default=1, metavar="N", help="videos: every Nth frame (default 1)")
    p.add_argument("--max-frames", type=int, metavar="N", help="videos: stop after N frames")


def _expand(inputs: list[str]) -> list[Path]:
    from ..errors import CommandError

    out = []
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            files = sorted(f for f in path.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES)
            if not files:
                raise CommandError(f"{path}: no images or videos in this folder")
            out += files
        elif path.is_file():
            out.append(path)
        else:
            raise CommandError(f"{path}: no such file or folder")
    return out


def _frames(path: Path, every: int, max_frames: int | None) -> Iterator[tuple[int, np.ndarray]]:
    import cv2

    from ..errors import CommandError

    if path.suffix.lower() in VIDEO_SUFFIXES:
        cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            raise CommandError(f"{path}: cannot open as a video")
        try:
            index = produced = 0
            while max_frames is None or produced < max_frames:
                ok, frame = cap.read()
                if not ok:
                    break
                if index % every == 0:
                    yield index, frame
                    produced += 1
                index += 1
        finally:
            cap.release()
        return
    frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if frame is None:
        raise CommandError(f"{path}: not a readable image")
    yield 0, frame


def run(args: argparse.Namespace) -> int:
    import cv2

    from ..annotate import draw_detections
    from ..errors import CommandError
    from ..detector import Detector, DetectorOptions

    if args.every < 1:
        raise CommandError(f"--every: must be >= 1, got {args.every}")
    if args.threads is not None and args.threads < 1:
        raise CommandError(f"--threads: must be >= 1, got {args.threads}")
    paths = _expand(args.inputs)
    detector = Detector.create_from_options(
        DetectorOptions(args.model, args.variant, args.threads, args.score_threshold, args.labels)
    )
    out_dir = Path(args.annotate) if args.annotate else None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    for path in paths:
        for index, frame in _frames(path, args.every, args.max_frames):
            det = detector.detect(frame)
            records = det.to_records(detector.labels)
            if args.json:
                print(json.dumps({"input": str(path), "frame": index, "detections": records}), flush=True)
            else:
                where = f"{path}" + (f" frame {index}" if path.suffix.lower() in VIDEO_SUFFIXES else "")
                print(f"{where}: {len(records)} detection(s)")
                for r in records:
                    x1, y1, x2, y2 = r["xyxy"]
                    print(f"  {r['label']:<16} {r['score']:.2f}  [{x1:.0f}, {y1:.0f}, {x2:.0f}, {y2:.0f}]")
            if out_dir:
                name = path.stem + (f"_{index:06d}" if path.suffix.lower() in VIDEO_SUFFIXES else "") + ".jpg"
                target = out_dir / name
                if not cv2.imwrite(str(target), draw_detections(frame, det, detector.labels)):
                    print(f"edgewatch detect: error: {target}: could not write", file=sys.stderr)
                    return exitcodes.FAILURE
    return exitcodes.OK
