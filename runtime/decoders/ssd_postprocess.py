"""`ssd_postprocess`: the four outputs of TFLite_Detection_PostProcess (boxes, classes, scores, count).

Exporters disagree on their order (TF1 export: boxes/classes/scores/count; TF2 SavedModel export:
scores/boxes/count/classes, under opaque names), so roles are resolved by name where the name
carries the op's output index, and otherwise by shape and, for the two [1, N] tensors, by content:
class ids are whole numbers, scores are not. Never by position.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from ..detections import Detections
from ..interpreter import TensorInfo
from ..table import Table
from .base import DecoderContext, DecoderError

_OP_INDEX = re.compile(r"TFLite_Detection_PostProcess(?::(\d))?$")
_ROLE_BY_INDEX = {0: "boxes", 1: "classes", 2: "scores", 3: "count"}


def looks_like_postprocess(outputs: list[TensorInfo]) -> bool:
    shapes = sorted(len(o.shape) for o in outputs)
    return len(outputs) == 4 and shapes == [1, 2, 2, 3] and any(len(o.shape) == 3 and o.shape[-1] == 4 for o in outputs)


class SsdPostprocessDecoder:
    def __init__(self, params: dict[str, Any], ctx: DecoderContext):
        t = Table(params, ctx.where, "output.params")
        self.threshold = t.number("score_threshold", 0.5, ge=0, lt=1)
        self.class_offset = t.number("class_offset", 0, integer=True)
        names = {role: t.str(role, None) for role in ("boxes", "classes", "scores", "count")}
        t.done()
        if not looks_like_postprocess(ctx.outputs):
            shapes = ", ".join(f"{o.name} {list(o.shape)}" for o in ctx.outputs)
            raise DecoderError(f"{ctx.where}: ssd_postprocess needs the four TFLite_Detection_PostProcess outputs, the model has: {shapes}")
        roles: dict[str, TensorInfo] = {}
        for role, name in names.items():
            if name is not None:
                match = [o for o in ctx.outputs if o.name == name]
                if not match:
                    raise DecoderError(f"{ctx.where}: output.params.{role}: no output named {name!r}")
                roles[role] = match[0]
        for o in ctx.outputs:
            m = _OP_INDEX.search(o.name)
            if m and o not in roles.values():
                roles.setdefault(_ROLE_BY_INDEX[int(m.group(1) or 0)], o)
        rest = [o for o in ctx.outputs if o not in roles.values()]
        for o in list(rest):
            if len(o.shape) == 3 and "boxes" not in roles:
                roles["boxes"] = o
                rest.remove(o)
            elif len(o.shape) == 1 and "count" not in roles:
                roles["count"] = o
                rest.remove(o)
        self._pending = rest  # the [1, N] pair whose roles the first informative frame settles
        self.roles = roles
        if len(rest) == 1:
            missing = {"classes", "scores"} - set(roles)
            roles[missing.pop()] = rest[0]
            self._pending = []
        self.tensors = list(ctx.outputs)
        self._index = {o.index: i for i, o in enumerate(self.tensors)}

    def _settle(self, arrays: list[np.ndarray]) -> bool:
        a, b = self._pending
        va, vb = (arrays[self._index[o.index]].reshape(-1) for o in (a, b))
        a_int = bool(np.all(va == np.round(va)))
        b_int = bool(np.all(vb == np.round(vb)))
        if a_int == b_int:
            return False  # e.g. every score exactly 0: wait for a frame that tells
        self.roles["classes"], self.roles["scores"] = (a, b) if a_int else (b, a)
        self._pending = []
        return True

    def decode(self, arrays: list[np.ndarray]) -> Detections:
        if self._pending and not self._settle(arrays):
            return Detections.empty()
        get = lambda role: self.roles[role].dequantize(arrays[self._index[self.roles[role].index]])  # noqa: E731
        n = int(round(float(get("count").reshape(-1)[0])))
        boxes = get("boxes")[0][:n]
        scores = get("scores")[0][:n]
        classes = get("classes")[0][:n]
        keep = (scores > self.threshold) & np.isfinite(boxes).all(axis=1)
        xyxy = boxes[keep][:, [1, 0, 3, 2]]
        return Detections(xyxy, scores[keep], classes[keep].astype(np.int32) + self.class_offset)
