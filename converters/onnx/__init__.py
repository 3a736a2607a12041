"""ONNX source: onnx2tf (NCHW -> NHWC) in its own venv, run as a subprocess, offline."""

from .errors import OnnxConversionError

__all__ = ["OnnxConversionError", "load_onnx", "onnx_description"]


def __getattr__(name: str):
    # Lazy, so `python -m converters.onnx.env --create` (CI setup) needs neither OpenCV nor runtime.
    if name in ("load_onnx", "onnx_description"):
        from . import convert

        return getattr(convert, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
