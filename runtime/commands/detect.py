"""`edgewatch detect MODEL INPUT...`: detections on images, folders of images, or videos."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Iterator

import numpy as np

from .. import exitcodes
from ..config.sections import MAX_THREADS
from .arguments import number

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
JPEG_START, JPEG_END = b"\xff\xd8", b"\xff\xd9"
VIDEO_SUFFIXES = {".avi", ".mp4", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg", ".h264"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="bundle folder, model.json, or a .tflite (with --labels)")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="images, folders of images, or videos")
    p.add_argument("--labels", help="labels file, one per line (for a bare .tflite)")
    p.add_argument("--variant", help="bundle variant (default: the bundle's default)")
    p.add_argument("--threads", type=number(integer=True, ge=1, le=MAX_THREADS), help="interpreter threads (default: all cores)")
    p.add_argument("--score", type=number(ge=0, le=1), dest="score_threshold", help="minimum score (default: the manifest's)")
    p.add_argument("--iou", type=number(gt=0, le=1), help="NMS IoU threshold (default: the manifest's; yolo and ssd_anchors decoders)")
    p.add_argument("--json", action="store_true", help="one JSON object per image or frame")
    p.add_argument("--annotate", metavar="OUT", help="write pictures with boxes and labels into this folder")
    p.add_argument("--every", type=number(integer=True, ge=1, le=1_000_000), default=1, metavar="N", help="videos: every Nth frame (default 1)")
    p.add_argument("--max-frames", type=number(integer=True, ge=1, le=100_000_000), metavar="N", help="videos: stop after N frames")
    p.add_argument("--motion", action="store_true",
                   help="videos: also find motion as the daemon's gate does ([motion] defaults), shown by --annotate and --json")
    p.add_argument("--mask", metavar="FILE", help="with --motion: a motion mask (an image, or .json polygons)")


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


def _frames(path: Path, every: int, max_frames: int | None) -> Iterator[tuple[int, float, np.ndarray]]:
    """(index, time in the video in seconds, frame); an image is frame 0 at time 0."""
    import cv2

    from ..errors import CommandError

    if path.suffix.lower() in VIDEO_SUFFIXES:
        cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            raise CommandError(f"{path}: cannot open as a video")
        fps = cap.get(cv2.CAP_PROP_FPS)
        fps = fps if 0 < fps < 1000 else 10.0
        try:
            index = produced = 0
            while max_frames is None or produced < max_frames:
                ok, frame = cap.read()
                if not ok:
                    break
                if index % every == 0:
                    yield index, index / fps, frame
                    produced += 1
                index += 1
        finally:
            cap.release()
        return
    data = path.read_bytes()
    if data[:2] == JPEG_START and JPEG_END not in data[-64:]:
        # OpenCV may decode what is there and grey the rest, with nothing but a warning on stderr
        raise CommandError(f"{path}: truncated JPEG (no end-of-image marker): not run")
    frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if frame is None:
        raise CommandError(f"{path}: not a readable image")
    yield 0, 0.0, frame


def run(args: argparse.Namespace) -> int:
    import cv2

    from ..annotate import draw_detections, draw_motion
    from ..config import MotionConfig
    from ..errors import CommandError
    from ..detector import Detector, DetectorOptions
    from ..motion import MaskError, MotionDetector, load_mask

    if args.mask and not args.motion:
        raise CommandError("--mask: goes with --motion")
    try:
        mask = load_mask(args.mask) if args.mask else None
    except MaskError as exc:
        raise CommandError(f"--mask: {exc}") from None
    paths = _expand(args.inputs)
    detector = Detector.create_from_options(
        DetectorOptions(args.model, args.variant, args.threads, args.score_threshold, iou=args.iou, labels=args.labels)
    )
    for warning in detector.warnings:
        print(f"edgewatch detect: warning: {warning}", file=sys.stderr)
    out_dir = Path(args.annotate) if args.annotate else None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    for path in paths:
        # one motion model per video, fed the frames it is shown (every --every-th) at their own times
        motion_detector = MotionDetector(MotionConfig(), mask) if args.motion else None
        for index, t, frame in _frames(path, args.every, args.max_frames):
            det = detector.detect(frame)
            records = det.to_records(detector.labels)
            motion = motion_detector.detect(frame, t) if motion_detector is not None else None
            if args.json:
                line = {"input": str(path), "frame": index, "detections": records}
                if motion is not None:
                    line["motion"] = {"state": motion.state, "boxes": [[round(v, 1) for v in b] for b in motion.boxes.tolist()]}
                print(json.dumps(line), flush=True)
            else:
                where = f"{path}" + (f" frame {index}" if path.suffix.lower() in VIDEO_SUFFIXES else "")
                print(f"{where}: {len(records)} detection(s)")
                for r in records:
                    x1, y1, x2, y2 = r["xyxy"]
                    print(f"  {r['label']:<16} {r['score']:.2f}  [{x1:.0f}, {y1:.0f}, {x2:.0f}, {y2:.0f}]")
                if motion is not None:
                    print(f"  motion: {len(motion.boxes)} box(es), {motion.state}")
            if out_dir:
                name = path.stem + (f"_{index:06d}" if path.suffix.lower() in VIDEO_SUFFIXES else "") + ".jpg"
                target = out_dir / name
                picture = draw_detections(frame, det, detector.labels)
                if motion is not None:
                    ignored = mask.ignored((frame.shape[1], frame.shape[0])) if mask is not None else None
                    picture = draw_motion(frame, motion.boxes, ignored, f"motion: {motion.state}", out=picture)
                if not cv2.imwrite(str(target), picture):
                    print(f"edgewatch detect: error: {target}: could not write", file=sys.stderr)
                    return exitcodes.FAILURE
    return exitcodes.OK
