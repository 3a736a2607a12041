"""Runs inside onnx2tf's venv, as `<venv>/bin/python worker.py ...`; edgewatch never imports it.

It sees only the venv's packages (TensorFlow 2.19, numpy 1.26, onnx), so it imports nothing from
edgewatch. It checks the ONNX file, checks every op against onnx2tf's converters, runs onnx2tf,
and writes a JSON result for `converters.onnx.convert` to read:
`{"ok": true, "metadata": {...}, "inputs": [[name, shape]], "outputs": [[name, shape]]}` or
`{"ok": false, "cause": "unreadable" | "unsupported_op" | "conversion", "message": str}`.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import sys
from pathlib import Path


def _op_types(graph, found: set[str]) -> set[str]:
    import onnx

    for node in graph.node:
        found.add(node.op_type)
        # If/Loop/Scan bodies are graphs held in attributes; onnx2tf converts their ops too.
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                _op_types(attr.g, found)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    _op_types(sub, found)
    return found


def _summary(exc: BaseException) -> str:
    """The exception's first telling line: tf_keras wraps the real cause under a generic heading."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    telling = [line for line in lines if not line.startswith("Exception encountered when calling layer")]
    return f"{type(exc).__name__}: {(telling or lines or [''])[0][:300]}".rstrip(": ")


def run(onnx_path: Path, out_dir: Path) -> dict:
    import onnx

    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
        onnx.checker.check_model(str(onnx_path))
    except Exception as exc:  # noqa: BLE001 - onnx raises DecodeError, ValidationError, OSError...: all mean "not a usable ONNX file"
        return {"ok": False, "cause": "unreadable", "message": f"not a valid ONNX model ({_summary(exc)})"}

    # onnx2tf has one module per op, onnx2tf/ops/<OpType>.py, imported by name as it converts.
    # Looked up as files: importing onnx2tf imports TensorFlow, seconds a bad model need not wait.
    (package,) = importlib.util.find_spec("onnx2tf").submodule_search_locations
    missing = sorted(op for op in _op_types(model.graph, set()) if not (Path(package) / "ops" / f"{op}.py").is_file())
    if missing:
        return {"ok": False, "cause": "unsupported_op",
                "message": f"unsupported op(s) {', '.join(missing)} (onnx2tf {importlib.metadata.version('onnx2tf')})"}

    import onnx2tf

    try:
        onnx2tf.convert(
            input_onnx_file_path=str(onnx_path),
            output_folder_path=str(out_dir),
            # A 'serving_default' signature named after the ONNX inputs, for TFLiteConverter.from_saved_model.
            output_signaturedefs=True,
            # The board feeds one frame at a time; this only fixes a dynamic batch dimension.
            batch_size=1,
            verbosity="error",
        )
    except SystemExit:  # onnx2tf prints "ERROR: ..." and exits; the caller reads the cause from the log
        return {"ok": False, "cause": "conversion", "message": ""}
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "cause": "conversion", "message": _summary(exc)}
    if not (out_dir / "saved_model.pb").is_file():
        return {"ok": False, "cause": "conversion", "message": "onnx2tf wrote no saved_model.pb"}
    return {"ok": True, **_description(model)}


def _shape(value_info) -> list:
    dims = value_info.type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") else None for d in dims]


def _description(model) -> dict:
    """What the converter reads about the ONNX model itself: exporters' metadata (Ultralytics writes
    names, imgsz, stride, task) and the graph's own input and output shapes (NCHW)."""
    return {
        "metadata": {p.key: p.value for p in model.metadata_props},
        "inputs": [[i.name, _shape(i)] for i in model.graph.input],
        "outputs": [[o.name, _shape(o)] for o in model.graph.output],
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("onnx", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("result", type=Path)
    args = parser.parse_args()
    result = run(args.onnx, args.out)
    args.result.write_text(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
