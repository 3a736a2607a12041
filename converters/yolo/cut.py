"""A v8 head cut before its final concat: boxes [1, 4, N] and scores [1, C, N] as two outputs.

Ultralytics' head ends in concat(boxes in input pixels, class scores 0..1). Quantized as one int8
tensor its scale is set by the boxes (about 2.5 per step at 640), and every score rounds to zero or
one step: the int8 model finds nothing. Cut before that concat, each part gets its own
quantization (scores at about 1/255 per step). The cut is found in the frozen TensorFlow graph, so
it works alike for every source the converter takes (ONNX through onnx2tf, SavedModel, Keras):
from the output back through Identity and Transpose to a ConcatV2 along the head's channel axis
whose inputs split into the 4 box channels and the C score channels. A graph of another shape is
left whole (None), and the caller says so.
"""

from __future__ import annotations

import logging

import numpy as np

from ..sources.graphdef import prune
from .head import YoloHead

log = logging.getLogger(__name__)

_PASS = ("Identity", "IdentityN", "StopGradient")


def _const(graph, tensor) -> np.ndarray | None:
    from tensorflow.python.framework import tensor_util

    op = tensor.op
    while op.type in _PASS:
        op = op.inputs[0].op
    if op.type != "Const":
        return None
    return tensor_util.MakeNdarray(op.get_attr("value"))


def _find_concat(tensor, channel_axis: int):
    """(concat op, channel axis in its output, perm from its output to the head) or None."""
    perm = list(range(len(tensor.shape)))
    t = tensor
    for _ in range(64):  # a head ends within a few ops of its concat
        op = t.op
        if op.type in _PASS:
            t = op.inputs[0]
            continue
        if op.type == "Transpose":
            p = _const(op.graph, op.inputs[1])
            if p is None:
                return None
            perm = [int(p[i]) for i in perm]  # head axis i = input axis p[perm[i]]
            t = op.inputs[0]
            continue
        if op.type == "ConcatV2":
            axis = _const(op.graph, op.inputs[-1])
            if axis is None:
                return None
            rank = len(t.shape)
            return op, int(axis) % rank, perm
        return None
    return None


def split_head(function, head: YoloHead):
    """A concrete function from the same input to {"boxes": [1, 4, N], "scores": [1, C, N]}, or None."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    frozen = convert_variables_to_constants_v2(function)
    outputs = frozen.structured_outputs
    if not isinstance(outputs, dict):  # freezing may flatten the output dict, in its keys' order (tf.nest)
        outputs = dict(zip(sorted(function.structured_outputs), tf.nest.flatten(outputs)))
    out = outputs[head.output]
    found = _find_concat(out, 1)
    if found is None:
        log.info("%s: no concat found at the end of the head", head.output)
        return None
    concat, axis, perm = found
    if axis != perm[1]:  # the concat joins candidates, not channels (a v5-style head)
        return None
    pieces = list(concat.inputs[:-1])
    sizes = [p.shape[axis] for p in pieces]
    if None in sizes:
        return None
    edges = np.cumsum(sizes)
    if 4 not in edges or edges[-1] != 4 + head.num_classes:
        log.info("%s: the final concat's parts %s do not split into 4 box and %d score channels", head.output, sizes, head.num_classes)
        return None
    k = int(np.nonzero(edges == 4)[0][0]) + 1
    graph_def = frozen.graph.as_graph_def()
    feed = frozen.inputs[0]
    pruned = prune(graph_def, "head", [feed.name], [p.name for p in pieces])
    signature = tf.TensorSpec(feed.shape, tf.float32, name="input")

    def join(parts):
        joined = parts[0] if len(parts) == 1 else tf.concat(parts, axis)
        return joined if perm == sorted(perm) else tf.transpose(joined, perm)

    @tf.function(input_signature=[signature])
    def split(x):
        parts = pruned(x)
        return {"boxes": join(parts[:k]), "scores": join(parts[k:])}

    return split.get_concrete_function()
