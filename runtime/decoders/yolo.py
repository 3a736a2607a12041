"""`yolo`: raw YOLO heads. v5-style [1, N, 5+C] (box, objectness, classes) and v8/11-style
[1, 4+C, N] (box, classes; channels first). Boxes are centre x, y, width, height, in input pixels
or normalised (exports differ; `coordinates` says, `auto` tells by range).

Quantized heads are thresholded before dequantizing: dequantization is monotonic, so the best class
of each candidate is found on the integers and only candidates are turned into floats.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..detections import Detections
from ..interpreter import TensorInfo
from ..table import Table
from .base import DecoderContext, DecoderError
from .nms import NmsParams, parse_nms


def yolo_layout(output: TensorInfo) -> str | None:
    """'v5' or 'v8' for a recognisable single YOLO head, else None."""
    shape = output.shape
    if len(shape) != 3 or shape[0] != 1:
        return None
    a, b = shape[1], shape[2]
    if a < b and a > 4:
        return "v8"
    if b < a and b > 5:
        return "v5"
    return None


class YoloDecoder:
    def __init__(self, params: dict[str, Any], ctx: DecoderContext):
        t = Table(params, ctx.where, "output.params")
        name = t.str("output", None)
        layout = t.str("layout", "auto", ("auto", "v5", "v8"))
        self.coordinates = t.str("coordinates", "auto", ("auto", "pixels", "normalized"))
        self.threshold = t.number("score_threshold", 0.25, ge=0, lt=1)
        self.nms: NmsParams = parse_nms(t.raw("nms", None), ctx.where, NmsParams("greedy", 0.45, 300, True))
        t.done()
        heads = [o for o in ctx.outputs if (name is None or o.name == name) and len(o.shape) == 3]
        if len(heads) != 1:
            shapes = ", ".join(f"{o.name} {list(o.shape)}" for o in ctx.outputs)
            raise DecoderError(f"{ctx.where}: yolo needs one [1, N, 5+C] or [1, 4+C, N] output (name it in output.params.output); the model has: {shapes}")
        self.head = heads[0]
        self.layout = yolo_layout(self.head) if layout == "auto" else layout
        if self.layout is None:
            raise DecoderError(f"{ctx.where}: output {self.head.name!r} {list(self.head.shape)} is not a YOLO head; set output.params.layout")
        self.input_w, self.input_h = ctx.input_size
        self.tensors = [self.head]

    def decode(self, arrays: list[np.ndarray]) -> Detections:
        raw = arrays[0][0]
        if self.layout == "v8":
            raw = raw.T  # (N, 4 + C)
        q = self.head.quantization if not np.issubdtype(raw.dtype, np.floating) else None
        if self.layout == "v5":
            obj = raw[:, 4]
            cls_raw = raw[:, 5:]
        else:
            obj = None
            cls_raw = raw[:, 4:]
        best_class = cls_raw.argmax(axis=1)
        best_raw = cls_raw[np.arange(len(cls_raw)), best_class]
        deq = self.head.dequantize  # the one dequantization rule (floats pass through)
        if obj is None:
            if q:  # compare on the integers: no float pass over the whole head
                cut = np.floor(self.threshold / q.scale + q.zero_point)
                cand = np.nonzero(best_raw > cut)[0]
            else:
                cand = np.nonzero(best_raw > self.threshold)[0]
            scores = deq(best_raw[cand])
        else:
            scores_all = deq(obj) * deq(best_raw)
            cand = np.nonzero(scores_all > self.threshold)[0]
            scores = scores_all[cand]
        keep = scores > self.threshold
        cand, scores = cand[keep], scores[keep]
        if not len(cand):
            return Detections.empty()
        box = deq(raw[cand, :4])
        cx, cy, w, h = box[:, 0], box[:, 1], box[:, 2], box[:, 3]
        xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        if self.coordinates == "pixels" or (self.coordinates == "auto" and float(np.abs(box).max()) > 2.0):
            xyxy = xyxy / np.array([self.input_w, self.input_h, self.input_w, self.input_h], np.float32)
        return self.nms.apply(Detections(xyxy, scores, best_class[cand]))
