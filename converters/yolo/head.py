"""Recognising a YOLO head among a model's outputs, or saying in one line why not.

The layouts are the runtime decoder's (runtime/decoders/yolo.py): v5 [1, N, 5+C], v8/11 [1, 4+C, N]
and end-to-end (YOLO26, YOLOv10) [1, N, 6]. The shape says which, except where two layouts share
one ([1, N, 6]: a one-class v5 head or an end-to-end one); the exporter's metadata (Ultralytics'
`end2end`) and the number of candidates (a grid's, or a fixed count) settle most of those, and
`--decoder` the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from runtime.decoders.yolo import yolo_layout
from runtime.interpreter import TensorInfo

from ..errors import SourceError

# --decoder: a YOLO layout, or `raw` for a model that is not a detector (its outputs as they are)
DECODERS = {"yolo-v5": "v5", "yolo-v8": "v8", "yolo-end2end": "end2end", "raw": None}
_SHAPES = {"v5": "[1, N, 5+C]", "v8": "[1, 4+C, N]", "end2end": "[1, N, 6]"}
# Outputs no classifier or embedding has: a 3-D tensor with many candidates (YOLO heads have
# hundreds to tens of thousands). Such a model is treated as a detector: never written as `raw`.
_MANY = 100


@dataclass(frozen=True)
class HeadOptions:
    """The command line's say over a detector's head: --decoder, --iou, --score (None: the source's own)."""

    decoder: str | None = None
    iou: float | None = None
    score_threshold: float | None = None


@dataclass(frozen=True)
class YoloHead:
    layout: str  # v5 | v8 | end2end
    output: str  # the source function's output holding the head
    shape: tuple[int, ...]
    num_classes: int


def option_name(layout: str) -> str:
    return next(k for k, v in DECODERS.items() if v == layout)


def _tensor(name: str, shape) -> TensorInfo:
    return TensorInfo(name, 0, tuple(int(d) for d in shape), np.dtype(np.float32), None)


def _classes(layout: str, shape: tuple[int, ...]) -> int:
    return {"v8": shape[1] - 4, "v5": shape[2] - 5, "end2end": 0}[layout]


def looks_like_detector(outputs: dict[str, tuple], metadata: dict) -> bool:
    """True for a model that should decode to boxes (an exporter says so, or a head-like output)."""
    if str(metadata.get("task", "")).lower() == "detect":
        return True
    return any(len(s) == 3 and s[0] == 1 and max(s[1], s[2]) >= _MANY for s in outputs.values())


def _describe(outputs: dict[str, tuple]) -> str:
    return ", ".join(f"{name} {list(shape)}" for name, shape in outputs.items())


def recognise(path, outputs: dict[str, tuple], input_size: tuple[int, int], metadata: dict, decoder: str | None) -> YoloHead | None:
    """The YOLO head of a model with these outputs (name -> shape), or None for a model that is not
    a detector. `decoder` is --decoder (None: decide from the shapes and metadata). Raises
    SourceError (one line: what was found, which option to pass) for a detector whose head is not
    recognised and for a --decoder that does not fit the outputs."""
    if decoder is not None and decoder not in DECODERS:
        raise SourceError(f"--decoder: {decoder!r} is not one of {', '.join(DECODERS)}")
    if decoder == "raw":
        return None
    heads = {n: tuple(s) for n, s in outputs.items() if len(s) == 3 and s[0] == 1 and None not in s}
    choices = ", ".join(k for k in DECODERS if k != "raw")
    if decoder is not None:
        layout = DECODERS[decoder]
        if len(heads) != 1:
            raise SourceError(f"{path}: --decoder {decoder} needs one {_SHAPES[layout]} output; the model has {_describe(outputs)}")
        (name, shape), = heads.items()
        found = yolo_layout(_tensor(name, shape), input_size)
        fits = {"v8": shape[1] > 4 and shape[1] < shape[2], "v5": shape[2] > 5 and shape[2] < shape[1],
                "end2end": shape[2] == 6 and shape[1] > 6}[layout]
        if not fits:
            hint = f"it looks like a {option_name(found)} head: pass --decoder {option_name(found)}" if found else f"expected {_SHAPES[layout]}"
            raise SourceError(f"{path}: --decoder {decoder}: output {name!r} {list(shape)} is not a {layout} head ({hint})")
        return YoloHead(layout, name, shape, _classes(layout, shape))
    if not looks_like_detector(outputs, metadata):
        return None
    if len(heads) == 1:
        (name, shape), = heads.items()
        layout = yolo_layout(_tensor(name, shape), input_size)
        if metadata.get("end2end") in (True, "True", "true") and shape[2] == 6:
            layout = "end2end"
        if layout is not None:
            return YoloHead(layout, name, shape, _classes(layout, shape))
        if shape[2] == 6 and shape[1] > 6:
            raise SourceError(f"{path}: output {name!r} {list(shape)} is either a one-class yolo-v5 head or an end-to-end "
                              "(NMS-free) one and the model does not say which: pass --decoder yolo-v5 or --decoder yolo-end2end")
    raise SourceError(f"{path}: looks like a detector but no output is a recognised YOLO head ({_describe(outputs)}); "
                      f"pass --decoder ({choices}) to say which layout, or --decoder raw if it is not a detector")
