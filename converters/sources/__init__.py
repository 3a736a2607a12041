"""Model sources by file type: each loader returns a `SourceModel` (see base.py).

Dispatch is by suffix: `.pb` (TF OD API SSD when recognised, else a frozen graph cut at --inputs /
--outputs), a SavedModel folder, `.keras` / `.h5`, and `.onnx` (converted to a SavedModel by
`converters.onnx.load_onnx` in its own environment, then loaded like any SavedModel).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConversionError, SourceError
from .base import DetectorHead, SourceModel
from .generic import InputOptions

SUFFIXES = (".pb", ".keras", ".h5", ".onnx", "SavedModel folder")


def load_source(
    path: Path,
    workdir: Path,
    options: InputOptions = InputOptions(),
    labels: list[str] | None = None,
    inputs: list[str] | None = None,
    outputs: list[str] | None = None,
) -> SourceModel:
    from . import generic, graphdef, tf_od_api

    path = Path(path)
    labels = labels or []
    if not path.exists():
        raise SourceError(f"{path}: no such file or folder")
    if path.is_dir():
        if not (path / "saved_model.pb").is_file():
            raise SourceError(f"{path}: a folder but not a SavedModel (no saved_model.pb)")
        return generic.load_saved_model(path, options, labels)
    suffix = path.suffix.lower()
    if suffix == ".pb":
        graph_def = graphdef.read_graph_def(path)
        if not inputs and not outputs and tf_od_api.looks_like_od_api_ssd(graph_def):
            return tf_od_api.load(path, graph_def, labels)
        return generic.load_frozen_graph(path, graph_def, inputs or [], outputs or [], options, labels)
    if suffix in (".keras", ".h5"):
        return generic.load_keras(path, options, labels)
    if suffix == ".onnx":
        from ..onnx import OnnxConversionError, load_onnx

        try:
            saved = load_onnx(path, workdir / "onnx")
        except OnnxConversionError as exc:
            # an unreadable file is bad input; anything else is the conversion failing
            bad_input = getattr(exc, "cause", "conversion") == "input"
            raise (SourceError if bad_input else ConversionError)(str(exc)) from None
        model = generic.load_saved_model(saved, options, labels, fmt="onnx")
        model.path = path
        return model
    raise SourceError(f"{path}: unsupported model type {suffix or '(no suffix)'!r}; expected one of {', '.join(SUFFIXES)}")


__all__ = ["DetectorHead", "InputOptions", "SourceModel", "load_source"]
