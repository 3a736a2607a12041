"""What every source loader returns: a function from the model's preprocessed input to its outputs.

The TFLite conversion, calibration and fidelity runs only need that function, the input's
preprocessing (`InputSpec`), and for detectors how to decode the outputs and how to run the source
model whole for reference detections.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from runtime.detections import Detections
from runtime.preprocess import InputSpec


@dataclass
class DetectorHead:
    """How the raw outputs of a detector are decoded, and how the source model detects on its own."""

    decoder: str  # "ssd_anchors" | "yolo"
    params: dict[str, Any]  # decoder parameters for model.json (tensor names filled in after conversion)
    anchors: np.ndarray | None  # (N, 4) [cy, cx, h, w]; None for anchor-free heads
    num_classes: int  # without background
    # BGR frame -> the source model's own detections, in source pixels, class ids from 0
    reference: Callable[[np.ndarray], Detections]
    # the raw outputs with scores already through their activation, for TFLite_Detection_PostProcess
    scored_function: Any = None
    nms_score_threshold: float = 1e-8  # the source's own NMS pre-threshold (for TFLite_Detection_PostProcess)
    # the manifest's names of the converted outputs (the function's output keys)
    output_params: dict[str, str] = field(default_factory=lambda: {"boxes": "boxes", "scores": "scores"})
    # what the variants are converted from, when not the source's function (a head cut before its
    # final concat, so that int8 quantizes boxes and scores apart)
    function: Any = None
    reference_score: float = 0.5  # the source's detections at or above this are the fidelity's ground truth
    reference_text: str = "the source graph run whole on the raw frames (its own preprocessing and NMS)"


class SizeError(ValueError):
    """This input size cannot be made from the source (one line: why)."""


@dataclass
class SourceModel:
    path: Path
    format: str  # tf_od_api_ssd | tf_frozen_graph | saved_model | keras | onnx
    function: Any  # tf ConcreteFunction: one [1, H, W, C] float32 input -> dict of named outputs
    trackable: Any  # what keeps the function's variables alive (for the converter)
    input: InputSpec
    output_names: list[str]  # keys of the function's output dict, in a stable order
    labels: list[str] = field(default_factory=list)
    head: DetectorHead | None = None
    # Other input sizes: `resized(width, height)` is the same model taking that size (its function,
    # input spec and, for a detector, the anchors of that size's feature maps; the reference stays
    # the source at its own size) and raises SizeError when that size cannot be made;
    # `any_size()` is one (function, trackable) taking any height and width, for one model file
    # that serves every size. Both None when the model's input size is fixed; `fixed_size` says why.
    resized: Callable[[int, int], "SourceModel"] | None = None
    any_size: Callable[[], tuple[Any, Any]] | None = None
    fixed_size: str = "the model's input size is fixed"

    @property
    def is_detector(self) -> bool:
        return self.head is not None

    def run(self, tensor: np.ndarray) -> list[np.ndarray]:
        """The source's raw outputs on one preprocessed float32 input (the generic fidelity reference)."""
        out = call(self.function, tensor)
        return [out[name] for name in self.output_names]


def call(function, tensor: np.ndarray) -> dict[str, np.ndarray]:
    """A source function's named outputs on one preprocessed float32 input."""
    import tensorflow as tf

    return {name: np.asarray(value) for name, value in function(tf.constant(tensor)).items()}
