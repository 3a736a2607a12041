"""ONNX source: onnx2tf (NCHW -> NHWC) in its own venv, run as a subprocess, offline."""

from .errors import OnnxConversionError

__all__ = ["OnnxConversionError", "load_onnx"]


def __getattr__(name: str):
    # Lazy, so `python -m converters.onnx.env --create` (CI setup) needs neither OpenCV nor runtime.
    if name == "load_onnx":
        from .convert import load_onnx

        return load_onnx
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
