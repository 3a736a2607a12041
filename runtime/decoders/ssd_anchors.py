"""`ssd_anchors`: raw box encodings + class scores + anchors (TF OD API SSD, BlazeFace, ...)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..detections import Detections
from ..table import Table
from .anchors import anchors_from_params
from .base import DecoderContext, DecoderError, find_output, sigmoid
from .box_coders import decode_mediapipe, decode_ssd
from .nms import NmsParams, parse_nms


class SsdAnchorsDecoder:
    def __init__(self, params: dict[str, Any], ctx: DecoderContext):
        t = Table(params, ctx.where, "output.params")
        self.coder = t.str("coder", "ssd", ("ssd", "mediapipe"))
        default_scales = [10.0, 10.0, 5.0, 5.0] if self.coder == "ssd" else [float(ctx.input_size[0]), float(ctx.input_size[1])] * 2
        self.scales = tuple(t.numbers("scales", default_scales, length=4))
        self.num_keypoints = t.number("num_keypoints", 0, integer=True, ge=0)
        box_len = 4 + 2 * self.num_keypoints
        self.boxes = find_output(ctx, t.str("boxes", None), "boxes", lambda o: len(o.shape) == 3 and o.shape[-1] == box_len)
        self.scores = find_output(
            ctx, t.str("scores", None), "scores", lambda o: len(o.shape) == 3 and o is not self.boxes and o.shape[1] == self.boxes.shape[1]
        )
        self.tensors = [self.boxes, self.scores]
        if self.boxes.shape[-1] < box_len:
            raise DecoderError(f"{ctx.where}: output {self.boxes.name!r} has {self.boxes.shape[-1]} values per box; "
                               f"coder {self.coder} with {self.num_keypoints} keypoints needs {box_len}")
        try:
            self.anchors = anchors_from_params(t.raw("anchors"), ctx.bundle_dir, ctx.where, ctx.input_size)
        except ValueError as exc:
            raise DecoderError(str(exc)) from None
        n = self.boxes.shape[1]
        if len(self.anchors) != n or self.scores.shape[1] != n:
            raise DecoderError(
                f"{ctx.where}: {len(self.anchors)} anchors but the model has {n} boxes and {self.scores.shape[1]} score rows"
            )
        self.activation = t.str("score", "sigmoid", ("sigmoid", "softmax", "none"))
        self.background = t.bool("background_class", False)
        self.threshold = t.number("score_threshold", 0.5, ge=0, lt=1)
        self.score_clip = t.number("score_clipping", 100.0 if self.coder == "mediapipe" else 0.0, ge=0)
        mediapipe = self.coder == "mediapipe"
        self.nms: NmsParams = parse_nms(t.raw("nms", None), ctx.where, NmsParams("weighted" if mediapipe else "greedy", 0.3 if mediapipe else 0.6))
        t.done()

    def _probabilities(self, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(anchor index, class index) pairs above threshold and their probabilities."""
        if self.score_clip:
            logits = np.clip(logits, -self.score_clip, self.score_clip)
        if self.activation == "softmax":
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            probs = e / e.sum(axis=1, keepdims=True)
            if self.background:
                probs = probs[:, 1:]
            rows, cols = np.nonzero(probs > self.threshold)
            return np.stack([rows, cols]), probs[rows, cols]
        if self.background:
            logits = logits[:, 1:]
        if self.activation == "sigmoid":
            # sigmoid is monotonic: threshold the logits, then take sigmoid of the few survivors
            cut = -math.inf if self.threshold <= 0 else math.log(self.threshold / (1 - self.threshold))
            rows, cols = np.nonzero(logits > cut)
            return np.stack([rows, cols]), sigmoid(logits[rows, cols])
        rows, cols = np.nonzero(logits > self.threshold)
        return np.stack([rows, cols]), logits[rows, cols]

    def decode(self, arrays: list[np.ndarray]) -> Detections:
        raw_scores = self.scores.dequantize(arrays[1])[0]
        (rows, cols), probs = self._probabilities(raw_scores)
        if not len(rows):
            return Detections.empty(self.num_keypoints or None)
        raw_boxes = self.boxes.dequantize(arrays[0][0][rows])
        anchors = self.anchors[rows]
        if self.coder == "ssd":
            xyxy, kp = decode_ssd(raw_boxes, anchors, self.scales), None
        else:
            xyxy, kp = decode_mediapipe(raw_boxes, anchors, self.scales, self.num_keypoints)
        return self.nms.apply(Detections(xyxy, probs, cols, kp))
