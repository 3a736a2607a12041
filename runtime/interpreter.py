"""The TFLite interpreter: which backend, model validation, and one wrapper around invoke.

Backends in order of preference: LiteRT (`ai_edge_litert`), `tflite_runtime`, `tensorflow.lite`.
The last is a fallback for workstations only; a board never has TensorFlow.
XNNPACK is the default CPU delegate in all three builds (tflite-runtime 2.14's takes float graphs
only); `threads` sets its thread count. It is applied silently or not at all (an int8 graph there,
a CPU its cpuinfo cannot read): the model then runs on TFLite's own kernels, slower, and int8 ones
round differently. So `Model.xnnpack` says which, and a model without it is logged.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .preprocess import Quantization

log = logging.getLogger(__name__)

BACKENDS = ("ai_edge_litert", "tflite_runtime", "tensorflow")
_MODULES = {
    "ai_edge_litert": "ai_edge_litert.interpreter",
    "tflite_runtime": "tflite_runtime.interpreter",
    "tensorflow": "tensorflow.lite",
}


class ModelError(ValueError):
    """A model file that cannot be used; one line naming the file and the reason."""


@dataclass(frozen=True)
class Backend:
    name: str
    interpreter_class: type
    version: str


def load_backend(prefer: str | None = None) -> Backend:
    names = BACKENDS if prefer in (None, "auto") else (prefer,)
    if prefer not in (None, "auto") and prefer not in BACKENDS:
        raise ModelError(f"backend {prefer!r}: not one of {', '.join(BACKENDS)}")
    errors = []
    for name in names:
        try:
            module = importlib.import_module(_MODULES[name])
        except ImportError as exc:
            errors.append(f"{name}: {exc}")
            continue
        cls = module.Interpreter
        root = importlib.import_module(name.split(".")[0])
        version = getattr(root, "__version__", None) or _dist_version(name)
        return Backend(name, cls, version)
    raise ModelError("no TFLite interpreter installed (pip install ai-edge-litert): " + "; ".join(errors))


def _dist_version(module: str) -> str:
    from importlib import metadata

    dist = {"ai_edge_litert": "ai-edge-litert", "tflite_runtime": "tflite-runtime"}.get(module, module)
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


# --- a structural check of the flatbuffer before handing it to C++ ---------------------------
# A truncated or foreign file can crash the interpreter's native code instead of raising, and a
# daemon must not die that way, so the layout is checked first: the identifier, the root table,
# its vtable, and every buffer's data lying inside the file.


def _u32(data: bytes, off: int) -> int:
    return struct.unpack_from("<I", data, off)[0]


def _check(cond: bool, reason: str) -> None:
    if not cond:
        raise _Corrupt(reason)


class _Corrupt(Exception):
    pass


def _table_field(data: bytes, table: int, index: int) -> int | None:
    """Absolute offset of field `index` of the table at `table`, or None if absent."""
    n = len(data)
    _check(0 <= table <= n - 4, "table offset out of range")
    vtable = table - struct.unpack_from("<i", data, table)[0]
    _check(0 <= vtable <= n - 4, "vtable out of range")
    vt_size = struct.unpack_from("<H", data, vtable)[0]
    _check(vt_size >= 4 and vtable + vt_size <= n, "vtable truncated")
    slot = 4 + 2 * index
    if slot + 2 > vt_size:
        return None
    rel = struct.unpack_from("<H", data, vtable + slot)[0]
    if rel == 0:
        return None
    _check(table + rel <= n - 1, "field out of range")
    return table + rel


def _vector(data: bytes, field_off: int, elem_size: int) -> tuple[int, int]:
    _check(field_off <= len(data) - 4, "vector offset out of range")
    vec = field_off + _u32(data, field_off)
    _check(vec <= len(data) - 4, "vector out of range")
    count = _u32(data, vec)
    _check(vec + 4 + count * elem_size <= len(data), "vector runs past the end of the file")
    return vec + 4, count


def check_flatbuffer(path: Path, data: bytes) -> None:
    if len(data) < 16:
        raise ModelError(f"{path}: not a TFLite model (only {len(data)} bytes)")
    if data[4:8] != b"TFL3":
        raise ModelError(f"{path}: not a TFLite model (no 'TFL3' flatbuffer identifier)")
    try:
        root = _u32(data, 0)
        subgraphs = _table_field(data, root, 2)
        _check(subgraphs is not None, "no subgraphs")
        start, count = _vector(data, subgraphs, 4)
        _check(count >= 1, "no subgraphs")
        for i in range(count):
            sg = start + 4 * i + _u32(data, start + 4 * i)
            for fidx in (0, 1, 2, 3):  # tensors, inputs, outputs, operators
                f = _table_field(data, sg, fidx)
                if f is not None:
                    _vector(data, f, 4)
        buffers = _table_field(data, root, 4)
        if buffers is not None:
            bstart, bcount = _vector(data, buffers, 4)
            for i in range(bcount):
                buf = bstart + 4 * i + _u32(data, bstart + 4 * i)
                f = _table_field(data, buf, 0)
                if f is not None:
                    _vector(data, f, 1)
                off, size = _table_field(data, buf, 1), _table_field(data, buf, 2)
                if off is not None and size is not None:  # >2 GB models keep data after the flatbuffer
                    o = struct.unpack_from("<Q", data, off)[0]
                    s = struct.unpack_from("<Q", data, size)[0]
                    _check(o + s <= len(data), "external buffer runs past the end of the file")
    except (_Corrupt, struct.error) as exc:
        raise ModelError(f"{path}: truncated or corrupt TFLite model ({exc})") from None


@dataclass(frozen=True)
class TensorInfo:
    name: str
    index: int
    shape: tuple[int, ...]
    dtype: np.dtype
    quantization: Quantization | None  # per-tensor affine quantization, None for float
    # A float output computed in integers and dequantized at the end (float I/O around an int8
    # graph): the quantization its values last had, which bounds their precision. None otherwise.
    upstream_quantization: Quantization | None = None

    def dequantize(self, value: np.ndarray) -> np.ndarray:
        if self.quantization is None or np.issubdtype(value.dtype, np.floating):
            return value.astype(np.float32, copy=False)
        q = self.quantization
        return (value.astype(np.float32) - q.zero_point) * np.float32(q.scale)


# Ops that move values without computing new ones: a dequantized tensor keeps its precision through them.
_MOVES_VALUES = {"RESHAPE", "TRANSPOSE", "SQUEEZE", "EXPAND_DIMS", "STRIDED_SLICE", "SLICE", "GATHER"}


def image_layout(shape: tuple[int, ...]) -> str | None:
    """'nhwc' for [1, H, W, C], 'nchw' for [1, C, H, W] (LiteRT exports of PyTorch models), C 1 or 3;
    None when the shape is not one image. Channels last wins a tie (a 3x3 image is no image)."""
    if len(shape) != 4 or shape[0] != 1:
        return None
    if shape[3] in (1, 3) and shape[1] >= 8 and shape[2] >= 8:
        return "nhwc"
    if shape[1] in (1, 3) and shape[2] >= 8 and shape[3] >= 8:
        return "nchw"
    return None


def _with_upstream(outputs: list[TensorInfo], interp) -> list[TensorInfo]:
    """Float outputs fed by DEQUANTIZE (through ops that only move values) keep the quantization of
    the integer tensor they came from. `interp` must show the model's own ops (no delegate node)."""
    if interp is None:
        return outputs
    try:
        ops = interp._get_ops_details()  # noqa: SLF001 - the only way to see which op made a tensor
        tensors = {d["index"]: d for d in interp.get_tensor_details()}
    except Exception:  # noqa: BLE001 - a private API: without it, no upstream precision is known
        return outputs
    producer = {int(o): op for op in ops for o in op["outputs"]}
    by_name = {d["name"]: i for i, d in tensors.items()}

    def traced(info: TensorInfo) -> TensorInfo:
        index = by_name.get(info.name, info.index)
        for _ in range(8):
            op = producer.get(index)
            if op is None or not len(op["inputs"]):
                return info
            if op["op_name"] == "DEQUANTIZE":
                q = _tensor_info(tensors[int(op["inputs"][0])]).quantization
                return replace(info, upstream_quantization=q) if q else info
            if op["op_name"] not in _MOVES_VALUES:
                return info
            index = int(op["inputs"][0])
        return info

    return [traced(o) if o.quantization is None else o for o in outputs]


def _resizable(detail: dict) -> bool:
    """Whether an image input leaves height and width to the caller (shape signature -1)."""
    signature = detail.get("shape_signature")
    if signature is None or len(signature) != 4:
        return False
    hw = (1, 2) if image_layout(tuple(int(d) for d in detail["shape"])) != "nchw" else (2, 3)
    return all(int(signature[i]) == -1 for i in hw)


def _tensor_info(detail: dict) -> TensorInfo:
    scale, zero = detail.get("quantization", (0.0, 0))
    quant = Quantization(float(scale), int(zero)) if scale else None
    return TensorInfo(detail["name"], detail["index"], tuple(int(d) for d in detail["shape"]), np.dtype(detail["dtype"]), quant)


class Model:
    """One loaded TFLite model: validated, allocated once, invoked many times.

    `input_size` (width, height) runs a model whose file leaves its input's height and width free
    (shape signature -1) at that size: one file then serves several input-size variants of a
    bundle. A file with a fixed input size runs at its own size (`input_size` says which; the caller
    compares it with the size it asked for).
    `verify(sha256)`: called with the digest of the bytes read, before they are interpreted (a file
    changed since conversion is named as such, not as a damaged flatbuffer).
    """

    def __init__(self, path: Path | str, threads: int | None = None, backend: str | None = None,
                 input_size: tuple[int, int] | None = None, verify: Callable[[str], None] | None = None):
        self.path = Path(path)
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            raise ModelError(f"{self.path}: no such file") from None
        except IsADirectoryError:
            raise ModelError(f"{self.path}: is a folder, not a .tflite file") from None
        except OSError as exc:
            raise ModelError(f"{self.path}: cannot read ({exc.strerror})") from None
        self.size_bytes = len(data)
        self.sha256 = hashlib.sha256(data).hexdigest()  # of the bytes loaded, not of the file later
        if verify is not None:
            verify(self.sha256)
        check_flatbuffer(self.path, data)
        self.backend = load_backend(backend)
        self.threads = threads or default_threads()
        try:
            self._interp = self.backend.interpreter_class(model_content=data, num_threads=self.threads)
            detail = self._interp.get_input_details()
            self.resizable = _resizable(detail[0]) if len(detail) == 1 else False
            if input_size is not None and len(detail) == 1:
                self._resize(detail[0], input_size)
            self._interp.allocate_tensors()
        except ModelError:
            raise
        except (ValueError, RuntimeError) as exc:
            reason = " ".join(str(exc).split())
            raise ModelError(f"{self.path}: the interpreter refused it ({reason[:300]})") from None
        self.xnnpack = "DELEGATE" in self.ops()  # the delegate's node replaces the ops it took
        if not self.xnnpack:
            log.warning("%s: XNNPACK not applied by %s %s; TFLite's own kernels run it (slower; int8 results "
                        "differ from the converter's report by a few output steps)", self.path, self.backend.name, self.backend.version)
        self.inputs = [_tensor_info(d) for d in self._interp.get_input_details()]
        self.outputs = [_tensor_info(d) for d in self._interp.get_output_details()]
        if any(o.quantization is None for o in self.outputs) and self._has_integer_tensors():
            self.outputs = _with_upstream(self.outputs, self._interp if not self.xnnpack else self._undelegated(data))
        del data
        if len(self.inputs) != 1:
            raise ModelError(f"{self.path}: expected one image input, the model has {len(self.inputs)}")
        self.input_layout = image_layout(self.input.shape)
        if self.input_layout is None:
            raise ModelError(
                f"{self.path}: input {self.input.name!r} has shape {list(self.input.shape)}; expected an image "
                "[1, H, W, 3] or [1, 3, H, W] (or one channel)"
            )
        if self.input.dtype not in (np.float32, np.uint8, np.int8):
            raise ModelError(f"{self.path}: input {self.input.name!r} has dtype {self.input.dtype}; expected float32, uint8 or int8")

    def _has_integer_tensors(self) -> bool:
        try:
            return any(np.dtype(d["dtype"]) in (np.int8, np.uint8) for d in self._interp.get_tensor_details())
        except Exception:  # noqa: BLE001 - tensors the backend cannot describe: assume there are
            return True

    def _undelegated(self, data: bytes):
        """An interpreter of the same bytes whose ops the delegate has not swallowed (never
        allocated: it is only read), or None when the backend cannot make one."""
        try:
            module = importlib.import_module(self.backend.interpreter_class.__module__)
            kind = module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
            return self.backend.interpreter_class(model_content=data, experimental_op_resolver_type=kind)
        except Exception:  # noqa: BLE001 - without it, no upstream precision is known
            return None

    def _resize(self, detail: dict, size: tuple[int, int]) -> None:
        shape = [int(d) for d in detail["shape"]]
        width, height = size
        if len(shape) != 4 or not self.resizable:
            return
        if image_layout(tuple(shape)) == "nchw":
            wanted = [shape[0], shape[1], height, width]
        else:
            wanted = [shape[0], height, width, shape[3]]
        if wanted != shape:
            self._interp.resize_tensor_input(detail["index"], wanted, strict=True)

    @property
    def engine(self) -> str:
        """Backend, version and kernels, for reports: a figure without XNNPACK is another figure."""
        return f"{self.backend.name} {self.backend.version} {'XNNPACK' if self.xnnpack else 'TFLite kernels'}"

    @property
    def input(self) -> TensorInfo:
        return self.inputs[0]

    @property
    def input_size(self) -> tuple[int, int]:
        """(width, height) of the image input, whichever its layout."""
        _, h, w, _ = self.input_nhwc_shape
        return w, h

    @property
    def input_channels(self) -> int:
        return self.input_nhwc_shape[3]

    @property
    def input_nhwc_shape(self) -> tuple[int, int, int, int]:
        shape = self.input.shape
        return shape if self.input_layout == "nhwc" else (shape[0], shape[2], shape[3], shape[1])

    def set_input(self, value: np.ndarray) -> None:
        self._interp.set_tensor(self.input.index, value)

    def invoke(self) -> None:
        self._interp.invoke()

    def output(self, info: TensorInfo) -> np.ndarray:
        """A copy of one output, as stored (quantized outputs stay quantized)."""
        return self._interp.get_tensor(info.index)

    def ops(self) -> list[str]:
        """Operator names in execution order (for reports: which ops stayed float)."""
        try:
            return [d["op_name"] for d in self._interp._get_ops_details()]  # noqa: SLF001 - the only op listing LiteRT has
        except Exception:  # noqa: BLE001 - a private API; a report without it is still a report
            return []
