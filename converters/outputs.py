"""Which output of a converted .tflite is which output of the source function.

The converter does not keep the function's output order (a SavedModel's outputs come back in
another order, named `PartitionedCall:k`), so outputs are matched by what they hold: each
converted output is run on a real sample and paired with the source output of the same shape
whose values it is closest to. The bundle then names them after the source's outputs.
"""

from __future__ import annotations

import numpy as np


def _run(data: bytes, sample: np.ndarray) -> list[np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=data)
    interp.allocate_tensors()
    detail = interp.get_input_details()[0]
    value = sample.astype(np.float32)
    if detail["dtype"] != np.float32:
        scale, zero = detail["quantization"]
        info = np.iinfo(detail["dtype"])
        value = np.clip(np.round(value / scale + zero), info.min, info.max)
    interp.set_tensor(detail["index"], value.astype(detail["dtype"]))
    interp.invoke()
    out = []
    for d in interp.get_output_details():
        v = interp.get_tensor(d["index"]).astype(np.float32)
        scale, zero = d["quantization"]
        out.append((v - zero) * scale if scale else v)
    return out


def match_outputs(data: bytes, reference: dict[str, np.ndarray], sample: np.ndarray) -> list[str]:
    """Source output names, in the converted model's output order."""
    got = _run(data, sample)
    if len(got) != len(reference):
        raise ValueError(f"the converted model has {len(got)} outputs, the source {len(reference)}")
    pairs = []
    for i, value in enumerate(got):
        for name, ref in reference.items():
            if tuple(value.shape) == tuple(np.shape(ref)):
                ref = np.asarray(ref, np.float32)
                error = float(np.abs(value - ref).mean() / (np.abs(ref).mean() + 1e-9))
                pairs.append((error, i, name))
    names: dict[int, str] = {}
    for _, i, name in sorted(pairs):  # best matches first; each output and each name used once
        if i not in names and name not in names.values():
            names[i] = name
    if len(names) != len(got):
        shapes = [list(v.shape) for v in got]
        raise ValueError(f"cannot pair converted outputs {shapes} with source outputs {[list(np.shape(r)) for r in reference.values()]}")
    return [names[i] for i in range(len(got))]
