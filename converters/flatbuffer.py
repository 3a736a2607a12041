"""Edits to a converted .tflite flatbuffer: output names, the stored input size of a file whose
input size is free, and TFLite_Detection_PostProcess appended.

The post-process op is a TFLite custom op that TensorFlow cannot express, so (as the TF OD API's
own export does through a graph rewrite) it is added after conversion: one operator taking the
raw box encodings, the scores after their activation (both dequantized first in an integer model),
and the anchors as a constant float tensor, with its options as a flexbuffer map, emitting the
standard four outputs (boxes, classes, scores, count).
Every LiteRT / TFLite build registers it with its builtin ops, so the file still runs everywhere.
"""

from __future__ import annotations

import numpy as np

POSTPROCESS_OP = "TFLite_Detection_PostProcess"


def _read(data: bytes):
    from tensorflow.lite.tools import flatbuffer_utils

    return flatbuffer_utils.read_model_from_bytearray(bytearray(data))


def _write(model) -> bytes:
    from tensorflow.lite.tools import flatbuffer_utils

    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def rename_outputs(data: bytes, names: list[str]) -> bytes:
    """Name the main subgraph's outputs (in their order), so the manifest can name them."""
    model = _read(data)
    sg = model.subgraphs[0]
    if len(sg.outputs) != len(names):
        raise ValueError(f"model has {len(sg.outputs)} outputs, {len(names)} names given")
    by_index = dict(zip((int(i) for i in sg.outputs), names))
    for index, name in by_index.items():
        sg.tensors[index].name = name.encode()
    for sig in model.signatureDefs or []:
        for tmap in sig.outputs or []:
            tmap.name = by_index.get(tmap.tensorIndex, tmap.name)
    return _write(model)


def set_input_size(data: bytes, width: int, height: int) -> bytes:
    """Store `width` x `height` as the input's shape, its signature left free (-1): any tool that
    loads the file as it is sees a model of that size, and a runtime may resize it to another."""
    model = _read(data)
    sg = model.subgraphs[0]
    if len(sg.inputs) != 1:
        raise ValueError(f"model has {len(sg.inputs)} inputs, expected one image")
    t = sg.tensors[int(sg.inputs[0])]
    shape = [int(d) for d in t.shape]
    if len(shape) != 4:
        raise ValueError(f"input shape {shape} is not [1, H, W, C]")
    signature = [int(d) for d in t.shapeSignature] if t.shapeSignature is not None else shape
    t.shape = np.array([shape[0], height, width, shape[3]], np.int32)
    t.shapeSignature = np.array([signature[0], -1, -1, signature[3]], np.int32)
    return _write(model)


def _opcode(model, schema, builtin: int, version: int) -> int:
    for i, code in enumerate(model.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin and code.version >= version:
            return i
    code = schema.OperatorCodeT()
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = min(builtin, 127)
    code.version = version
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _dequantized(model, sg, schema, index: int, new_tensor) -> int:
    """`index` itself when float32, else a new float32 tensor fed by a DEQUANTIZE op."""
    src = sg.tensors[index]
    if src.type == schema.TensorType.FLOAT32:
        return index
    out = new_tensor(src.name.decode() + "/dequantized", list(src.shape))
    op = schema.OperatorT()
    op.opcodeIndex = _opcode(model, schema, schema.BuiltinOperator.DEQUANTIZE, 2 if src.type == schema.TensorType.INT8 else 1)
    op.inputs = np.array([index], np.int32)
    op.outputs = np.array([out], np.int32)
    sg.operators.append(op)
    return out


def append_detection_postprocess(
    data: bytes,
    anchors: np.ndarray,
    *,
    num_classes: int,
    scales: list[float],
    iou: float,
    score_threshold: float,
    max_detections: int,
    boxes_output: int = 0,
    scores_output: int = 1,
) -> bytes:
    """The model with TFLite_Detection_PostProcess after its (boxes, scores) outputs.

    `scales` is the SSD box coder's [y, x, h, w]; anchors are (N, 4) [cy, cx, h, w]. The scores
    must already be probabilities (sigmoid/softmax applied), with the background column first.
    """
    from flatbuffers import flexbuffers
    from tensorflow.lite.python import schema_py_generated as schema

    model = _read(data)
    sg = model.subgraphs[0]
    boxes, scores = sg.outputs[boxes_output], sg.outputs[scores_output]
    n = int(sg.tensors[boxes].shape[1])
    if anchors.shape != (n, 4):
        raise ValueError(f"{len(anchors)} anchors for {n} boxes")

    buffer = schema.BufferT()
    buffer.data = np.ascontiguousarray(anchors, np.float32).view(np.uint8).reshape(-1)
    model.buffers.append(buffer)

    def tensor(name: str, shape: list[int], buffer_index: int = 0) -> int:
        t = schema.TensorT()
        t.name = name.encode()
        t.shape = np.array(shape, np.int32)
        t.type = schema.TensorType.FLOAT32
        t.buffer = buffer_index  # 0 is the empty buffer every non-constant tensor names
        sg.tensors.append(t)
        return len(sg.tensors) - 1

    anchor_tensor = tensor("anchors", [n, 4], len(model.buffers) - 1)
    # The op's quantized path wants quantized anchors too (uint8, losing ~0.4% of the anchor
    # range); dequantizing the two inputs instead keeps the anchors exact.
    boxes, scores = (_dequantized(model, sg, schema, t, tensor) for t in (boxes, scores))
    outs = [
        tensor(POSTPROCESS_OP, [1, max_detections, 4]),
        tensor(f"{POSTPROCESS_OP}:1", [1, max_detections]),
        tensor(f"{POSTPROCESS_OP}:2", [1, max_detections]),
        tensor(f"{POSTPROCESS_OP}:3", [1]),
    ]

    code = schema.OperatorCodeT()
    code.builtinCode = schema.BuiltinOperator.CUSTOM
    code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
    code.customCode = POSTPROCESS_OP.encode()
    code.version = 1
    model.operatorCodes.append(code)

    op = schema.OperatorT()
    op.opcodeIndex = len(model.operatorCodes) - 1
    op.inputs = np.array([boxes, scores, anchor_tensor], np.int32)
    op.outputs = np.array(outs, np.int32)
    y, x, h, w = (float(s) for s in scales)
    op.customOptions = np.frombuffer(
        flexbuffers.Dumps(
            {
                "max_detections": int(max_detections),
                "max_classes_per_detection": 1,
                "detections_per_class": int(max_detections),
                "use_regular_nms": False,
                "nms_score_threshold": float(score_threshold),
                "nms_iou_threshold": float(iou),
                "num_classes": int(num_classes),
                "y_scale": y,
                "x_scale": x,
                "h_scale": h,
                "w_scale": w,
            }
        ),
        np.uint8,
    )
    op.customOptionsFormat = schema.CustomOptionsFormat.FLEXBUFFERS
    sg.operators.append(op)
    sg.outputs = np.array(outs, np.int32)
    model.signatureDefs = []  # the old signature names the raw outputs, which are now internal
    return _write(model)
