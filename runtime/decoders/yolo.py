"""`yolo`: raw YOLO heads, as Ultralytics exports them.

Layouts (`layout`):
- `v5`: [1, N, 5+C] — centre x, y, width, height, objectness, class scores (score = obj x class);
- `v8` (YOLOv8, 11): [1, 4+C, N] — centre x, y, width, height, class scores, channels first; or the
  same head cut in two before its final concat, boxes [1, 4, N] and scores [1, C, N] (`boxes` and
  `scores` name them): what an int8 conversion ships, so that each gets its own quantization;
- `end2end` (YOLO26, YOLOv10, NMS-free): [1, N, 6] — x1, y1, x2, y2, score, class, already
  suppressed: only the score threshold applies.
Boxes are in input pixels or normalised to the input (exports differ; `coordinates` says, `auto`
tells by range). NMS defaults are Ultralytics' own (IoU 0.7, up to 300 boxes, per class) and the
score threshold its `conf` default 0.25, so a bundle agrees with `yolo predict` out of the box.

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

LAYOUTS = ("v5", "v8", "end2end")
DEFAULT_SCORE = 0.25  # Ultralytics' predict `conf`
DEFAULT_NMS = NmsParams("greedy", 0.7, 300, True)  # Ultralytics' predict `iou`, `max_det`, not agnostic
# A quantized output whose step is coarser than this cannot tell a 0.25 score from a 0.26 one: its
# scores have collapsed (boxes in pixels and scores 0..1 sharing one int8 scale, typically).
MAX_SCORE_STEP = 0.01
STRIDES = (8, 16, 32)


def grid_candidates(input_size: tuple[int, int], strides=STRIDES) -> int:
    """Anchor points of an anchor-free head over the usual strides (8400 at 640x640)."""
    w, h = input_size
    return sum(-(-w // s) * -(-h // s) for s in strides)


def yolo_layout(output: TensorInfo, input_size: tuple[int, int] | None = None) -> str | None:
    """'v5', 'v8' or 'end2end' for a recognisable single YOLO head, else None.

    [1, N, 6] is both a one-class v5 head and an end-to-end one: with the input size known, a v5
    head has 3 anchors per grid point and an end-to-end one a fixed count (300) that is no grid's.
    Without it, or when the count fits neither, the shape alone cannot say: None.
    """
    shape = output.shape
    if len(shape) != 3 or shape[0] != 1:
        return None
    a, b = shape[1], shape[2]
    if a < b and a > 4:
        return "v8"
    if b == 6 and a > b:
        if input_size is None:
            return None
        grids = {grid_candidates(input_size, s) for s in (STRIDES, (*STRIDES, 64))}
        if a in {3 * g for g in grids}:
            return "v5"
        return None if a in grids else "end2end"
    if b < a and b > 5:
        return "v5"
    return None


def score_step(tensor: TensorInfo) -> float | None:
    """The smallest score difference an output can hold: its scale when quantized, or the scale of
    the integer tensor a float output was dequantized from; None when it was float all along."""
    q = tensor.quantization if not np.issubdtype(tensor.dtype, np.floating) else tensor.upstream_quantization
    return None if q is None else float(q.scale)


class YoloDecoder:
    def __init__(self, params: dict[str, Any], ctx: DecoderContext):
        t = Table(params, ctx.where, "output.params")
        name = t.str("output", None)
        boxes_name, scores_name = t.str("boxes", None), t.str("scores", None)
        layout = t.str("layout", "auto", ("auto", *LAYOUTS))
        self.coordinates = t.str("coordinates", "auto", ("auto", "pixels", "normalized"))
        self.threshold = t.number("score_threshold", DEFAULT_SCORE, ge=0, lt=1)
        self.nms: NmsParams = parse_nms(t.raw("nms", None), ctx.where, DEFAULT_NMS)
        t.done()
        self.input_w, self.input_h = ctx.input_size
        by_name = {o.name: o for o in ctx.outputs}
        if (boxes_name is None) != (scores_name is None):
            raise DecoderError(f"{ctx.where}: output.params: yolo takes `boxes` and `scores` together (a head cut in two), or neither")
        if boxes_name is not None:
            missing = [n for n in (boxes_name, scores_name) if n not in by_name]
            if missing:
                raise DecoderError(f"{ctx.where}: output.params: no output named {missing[0]!r} (outputs: {', '.join(by_name)})")
            self.boxes, self.scores = by_name[boxes_name], by_name[scores_name]
            n = self.boxes.shape[-1]
            if (len(self.boxes.shape) != 3 or self.boxes.shape[:2] != (1, 4) or len(self.scores.shape) != 3
                    or self.scores.shape[0] != 1 or self.scores.shape[2] != n):
                raise DecoderError(f"{ctx.where}: yolo boxes {list(self.boxes.shape)} and scores {list(self.scores.shape)}: "
                                   "expected [1, 4, N] and [1, C, N]")
            if layout not in ("auto", "v8"):
                raise DecoderError(f"{ctx.where}: output.params.layout: a head cut in two is a v8 head, not {layout!r}")
            self.layout, self.head = "v8", None
            self.tensors = [self.boxes, self.scores]
            return
        heads = [o for o in ctx.outputs if (name is None or o.name == name) and len(o.shape) == 3]
        if len(heads) != 1:
            shapes = ", ".join(f"{o.name} {list(o.shape)}" for o in ctx.outputs)
            raise DecoderError(f"{ctx.where}: yolo needs one [1, N, 5+C], [1, 4+C, N] or [1, N, 6] output "
                               f"(name it in output.params.output); the model has: {shapes}")
        self.head = heads[0]
        self.boxes = self.scores = self.head
        self.layout = yolo_layout(self.head, ctx.input_size) if layout == "auto" else layout
        if self.layout is None:
            raise DecoderError(f"{ctx.where}: output {self.head.name!r} {list(self.head.shape)} is not a recognisable YOLO head; "
                               f"set output.params.layout to one of {', '.join(LAYOUTS)}")
        a, b = self.head.shape[1], self.head.shape[2]
        width = a if self.layout == "v8" else b
        if width < {"v5": 6, "v8": 5, "end2end": 6}[self.layout] or (self.layout == "end2end" and width != 6):
            raise DecoderError(f"{ctx.where}: output {self.head.name!r} {list(self.head.shape)} is not a {self.layout} head "
                               f"({'[1, 4+C, N]' if self.layout == 'v8' else '[1, N, 6]' if self.layout == 'end2end' else '[1, N, 5+C]'})")
        self.tensors = [self.head]

    @property
    def score_step(self) -> float | None:
        """The step of the quantized output holding the scores; None when they are float."""
        return score_step(self.scores)

    def warnings(self) -> list[str]:
        step = self.score_step
        if step is not None and step > MAX_SCORE_STEP:
            return [f"output {self.scores.name!r} holds the scores quantized at a step of {step:.3g} "
                    f"(coarser than {MAX_SCORE_STEP}): its scores have collapsed and it will find little or nothing; "
                    "convert it so that boxes and scores are quantized apart (edgewatch convert does)"]
        return []

    def _rows(self, arrays: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(boxes (N, 4), class scores (N, C), objectness (N,) or None), as stored."""
        if self.head is None:
            return arrays[0][0].T, arrays[1][0].T, None
        raw = arrays[0][0]
        if self.layout == "v8":
            raw = raw.T  # (N, 4 + C)
            return raw[:, :4], raw[:, 4:], None
        if self.layout == "v5":
            return raw[:, :4], raw[:, 5:], raw[:, 4]
        return raw[:, :4], raw[:, 4:5], None

    def decode(self, arrays: list[np.ndarray]) -> Detections:
        box_raw, cls_raw, obj = self._rows(arrays)
        deq_box, deq = self.boxes.dequantize, self.scores.dequantize  # the one dequantization rule
        if self.layout == "end2end":
            best_class = None
            best_raw = cls_raw[:, 0]
        else:
            best_class = cls_raw.argmax(axis=1)
            best_raw = cls_raw[np.arange(len(cls_raw)), best_class]
        q = self.scores.quantization if not np.issubdtype(best_raw.dtype, np.floating) else None
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
        box = deq_box(box_raw[cand])
        if self.layout == "end2end":
            xyxy = box
            classes = np.rint(self.head.dequantize(arrays[0][0][cand, 5])).astype(np.int32)
        else:
            cx, cy, w, h = box[:, 0], box[:, 1], box[:, 2], box[:, 3]
            xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
            classes = best_class[cand]
        if self.coordinates == "pixels" or (self.coordinates == "auto" and float(np.abs(box).max()) > 2.0):
            xyxy = xyxy / np.array([self.input_w, self.input_h, self.input_w, self.input_h], np.float32)
        det = Detections(xyxy, scores, classes)
        if self.layout == "end2end":  # already suppressed by the model
            return det.sorted_by_score()[: self.nms.max_detections]
        return self.nms.apply(det)
