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

import numpy as np

import runtime
from runtime.preprocess import InputSpec, Preprocessor

from ..errors import SourceError
from ..samples import load_samples

COUNT = 20
SIZE = 128
FILE_NAME = f"calibration_image_sample_data_{COUNT}x{SIZE}x{SIZE}x3_float32.npy"
FOOTAGE = Path(runtime.__file__).parent / "assets" / "vtest.avi"


def write_sample_data(directory: Path, video: Path = FOOTAGE) -> Path:
    """Writes the sample file into `directory` (onnx2tf's working directory) and returns its path."""
    try:  # the converter's own frame picking: spread over the video, read straight through
        frames = load_samples(video, COUNT, 1).calibration  # (one held-out frame: the minimum it takes)
    except SourceError as exc:
        raise FileNotFoundError(f"{video}: no frames to make onnx2tf's sample images from ({exc})") from None
    # Short footage repeats frames rather than changing the shape onnx2tf expects.
    frames = [frames[i % len(frames)] for i in range(COUNT)]
    to_rgb_unit = Preprocessor(InputSpec(SIZE, SIZE, color="rgb", resize="stretch", interpolation="area"), np.float32)
    data = np.concatenate([to_rgb_unit(frame)[0] for frame in frames])
    path = directory / FILE_NAME
    np.save(path, data)
    return path
