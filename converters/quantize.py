"""TFLiteConverter, once per quantization mode, builtin ops only.

Modes (what `--quantize` takes): `none` (float32), `float16` (weights stored as float16), `dynamic`
(int8 weights, float activations), `int8` (full integer, calibrated on representative inputs;
`io_type` says whether the model's own input and outputs stay float or are uint8/int8).
Representative inputs are produced by the runtime's own Preprocessor, so calibration sees exactly
what the board will feed.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from .errors import ConversionError

log = logging.getLogger(__name__)

MODES = ("int8", "float16", "dynamic", "none")
IO_TYPES = ("float", "uint8", "int8")
# TFLite_Detection_PostProcess and other custom ops are appended after conversion; the
# network itself must convert with builtin ops only so that any LiteRT build runs it.
_UNSUPPORTED = re.compile(r"'tf\.(\w+)' op is neither a custom op nor a flex op|ops are not supported[^:]*: ([\w, .]+)")


def _reason(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    ops = sorted({name.removeprefix("tf.") for m in _UNSUPPORTED.findall(text) for part in m for name in part.split(", ") if name})
    if ops:
        return f"unsupported op(s), no builtin TFLite kernel: {', '.join(ops)}"
    return text[:400]


@contextmanager
def _native_output_quiet():
    """TensorFlow's converter prints from C++ straight to fds 1 and 2; stdout must stay clean for
    `--json`, and the noise would bury the progress lines. Kept for `-vv` (debug log)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            sink.seek(0)
            log.debug("converter output:\n%s", sink.read().decode(errors="replace"))


def convert(
    function,
    trackable,
    mode: str,
    *,
    source: Path,
    io_type: str = "float",
    representative: Callable[[], Iterable[np.ndarray]] | None = None,
    sparse: bool = False,
) -> bytes:
    """One concrete function (one image input) -> .tflite bytes for `mode`. `sparse`: weights that
    are mostly zeros are stored in TFLite's sparse encoding (a pruned network)."""
    import tensorflow as tf

    if mode not in MODES:
        raise ValueError(f"quantization {mode!r} is not one of {', '.join(MODES)}")
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    # Variables become constants first: a Keras model's weights would otherwise stay resource
    # variables (READ_VARIABLE ops) that the calibration run cannot read.
    frozen = convert_variables_to_constants_v2(function)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen], trackable)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if mode == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif mode == "int8":
        if representative is None:
            raise ValueError("int8 needs representative inputs")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([x] for x in representative())
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        io = {"float": tf.float32, "uint8": tf.uint8, "int8": tf.int8}[io_type]
        converter.inference_input_type = io
        converter.inference_output_type = io
    if sparse:
        converter.optimizations = [*converter.optimizations, tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
    try:
        with _native_output_quiet(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Statistics for quantized inputs were expected": by design
            return bytes(converter.convert())
    except Exception as exc:  # noqa: BLE001 - ConverterError, ValueError, RuntimeError: all one failure
        raise ConversionError(f"{source}: {mode} conversion failed: {_reason(exc)}") from None
