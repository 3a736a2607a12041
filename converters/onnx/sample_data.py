"""The sample images onnx2tf wants in its working directory, made from real footage.

onnx2tf runs the ONNX model on 20 RGB images (128x128, float32 in 0..1, resized by it to the model's
input) to check its NCHW -> NHWC layout choices op by op. It reads them from
`./calibration_image_sample_data_20x128x128x3_float32.npy` and, when that file is absent, downloads
it from GitHub at run time (`onnx2tf.utils.common_functions.download_test_image_data`, 1.29.24).
Writing the file ourselves keeps the conversion offline, and the frames come from the footage the
runtime ships (runtime/assets/vtest.avi), through the runtime's own preprocessing.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

import runtime
from runtime.preprocess import InputSpec, Preprocessor

COUNT = 20
SIZE = 128
FILE_NAME = f"calibration_image_sample_data_{COUNT}x{SIZE}x{SIZE}x3_float32.npy"
FOOTAGE = Path(runtime.__file__).parent / "assets" / "vtest.avi"


def _frames(video: Path, count: int) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(video))
    try:
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        wanted = set(np.linspace(0, max(total - 1, 0), count).round().astype(int).tolist())
        frames: list[np.ndarray] = []
        index = 0
        # Read straight through: seeking in this AVI lands on keyframes, not the frame asked for.
        while len(frames) < len(wanted):
            ok, frame = capture.read()
            if not ok:
                break
            if index in wanted:
                frames.append(frame)
            index += 1
    finally:
        capture.release()
    return frames


def write_sample_data(directory: Path, video: Path = FOOTAGE) -> Path:
    """Writes the sample file into `directory` (onnx2tf's working directory) and returns its path."""
    frames = _frames(video, COUNT)
    if not frames:
        raise FileNotFoundError(f"{video}: no frames to make onnx2tf's sample images from")
    # Short footage repeats frames rather than changing the shape onnx2tf expects.
    frames = [frames[i % len(frames)] for i in range(COUNT)]
    to_rgb_unit = Preprocessor(InputSpec(SIZE, SIZE, color="rgb", resize="stretch", interpolation="area"), np.float32)
    data = np.concatenate([to_rgb_unit(frame)[0] for frame in frames])
    path = directory / FILE_NAME
    np.save(path, data)
    return path
