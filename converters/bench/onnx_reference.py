"""The reference for YOLO fidelity figures: onnxruntime on the ONNX model, fed by the runtime's own
letterbox; run with a Python that has onnxruntime (the bench venv, or onnx2tf's), never imported by
edgewatch. Writes the raw head for every frame into one .npz:

    python converters/bench/onnx_reference.py model.onnx frames.npz heads.npz

frames.npz holds the BGR frames (frame_0, frame_1, ...); heads.npz gets head_0, head_1, ... (the
ONNX model's first output as it is) and the input size. PYTHONPATH must name the repository: the
letterbox is runtime.preprocess's, the one implementation.
"""

from __future__ import annotations

import sys

import numpy as np


def main() -> int:
    import onnxruntime as ort

    from runtime.preprocess import InputSpec, Preprocessor

    model, frames_path, out = sys.argv[1:4]
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    _, c, h, w = inp.shape
    pre = Preprocessor(InputSpec(int(w), int(h), color="rgb", resize="letterbox", pad_value=114), np.float32, layout="nchw")
    frames = np.load(frames_path)
    heads = {}
    for i in range(len(frames.files)):
        tensor, _ = pre(frames[f"frame_{i}"])
        heads[f"head_{i}"] = session.run(None, {inp.name: tensor})[0]
    np.savez(out, input_size=np.array([w, h]), **heads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
