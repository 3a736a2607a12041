"""Loading a detector for the daemon: built, then tested on a real frame, before it may serve.

Used at start, on SIGHUP, and by the resource monitor's variant and thread changes, so a model
that fails to load or produces garbage never replaces one that works.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..detector import Detector, DetectorOptions
from ..interpreter import ModelError
from ..config import ModelConfig
from ..sources import Frame

log = logging.getLogger(__name__)


def load_and_test(model: ModelConfig, *, variant: str | None = None, threads: int | None = None, frame: Frame | None = None,
                  low_score: float | None = None) -> Detector:
    """`variant`/`threads` override the config's. With `low_score` (the tracker's) and no
    `score_threshold` in the config, the decoder keeps detections down to that score: the tracker
    continues events on them. Raises BundleError/ModelError/DecoderError (one line) when the model
    cannot serve."""
    # Resolved once, here: through a `current` link the detector then reads one bundle (not the
    # manifest of one and the model of the next), and status.json names what was really loaded.
    det = Detector.create_from_options(DetectorOptions(
        model=Path(model.path).resolve(), variant=variant or model.variant, threads=threads or model.threads,
        score_threshold=model.score_threshold if model.score_threshold is not None else low_score,
        labels=model.labels, iou=model.iou))
    for warning in det.warnings:  # it may serve, but nobody should trust its silence
        log.warning("%s", warning)
    if frame is not None:
        image = frame.image
    else:  # before the camera's first frame: the model's own input size, mid-grey
        w, h = det.model.input_size
        image = np.full((h, w, 3), 127, np.uint8)
    result = det.detect(image)
    if not (np.isfinite(result.xyxy).all() and np.isfinite(result.score).all()):
        raise ModelError(f"{det.variant.file}: the test inference produced non-finite boxes or scores")
    return det
