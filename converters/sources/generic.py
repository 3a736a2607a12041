"""Image models that are not recognised detectors: Keras, SavedModel, frozen graph with named tensors.

Each loader ends in the same place: a concrete function from one fixed-size [1, H, W, C] float32
input to a dict of named outputs, with the input's preprocessing taken from the options (these
formats do not record it). A model whose own input leaves height and width free can be traced at
other sizes too (`--sizes`); one with a fixed input size cannot, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from runtime.preprocess import InputSpec

from ..errors import SourceError
from .base import SizeError, SourceModel
from .graphdef import node_name, prune


@dataclass(frozen=True)
class InputOptions:
    """How to preprocess for a model whose file does not say (from the command line)."""

    size: tuple[int, int] | None = None  # (width, height) when the model's input is not fixed
    color: str = "rgb"
    resize: str | None = None  # None: the model's own (letterbox for a YOLO), else stretch
    interpolation: str = "linear"
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (255.0, 255.0, 255.0)


def _spec(path: Path, shape: list, options: InputOptions) -> InputSpec:
    if len(shape) != 4:
        raise SourceError(f"{path}: input has shape {shape}; expected an image [batch, H, W, C]")
    h, w, c = shape[1], shape[2], shape[3]
    if c not in (1, 3):
        raise SourceError(f"{path}: input has {c} channels; expected 1 or 3 (NHWC)")
    if h is None or w is None:
        if options.size is None:
            raise SourceError(f"{path}: the input size is not fixed ({shape}); give --input-size WxH")
        w, h = options.size
    elif options.size is not None and options.size != (w, h):
        raise SourceError(f"{path}: --input-size {options.size[0]}x{options.size[1]} but the model takes {w}x{h}")
    color = "gray" if c == 1 else options.color
    if (color == "gray") != (c == 1):
        raise SourceError(f"{path}: --color {options.color} but the model takes {c} channel(s)")
    return InputSpec(int(w), int(h), color, options.resize or "stretch", options.interpolation, options.mean[:c], options.std[:c])


def _named(outputs) -> dict:
    """Whatever a model returns (tensor, list, dict) as a dict with stable names."""
    if isinstance(outputs, dict):
        return dict(outputs)
    if isinstance(outputs, (list, tuple)):
        return {f"output_{i}": o for i, o in enumerate(outputs)}
    return {"output_0": outputs}


def _free(shape: list | None) -> bool:
    """Height and width left to the caller in the model's own input shape."""
    return shape is not None and len(shape) == 4 and shape[1] is None and shape[2] is None


def _wrap(path: Path, fmt: str, call, trackable, spec: InputSpec, labels: list[str], free: bool = False) -> SourceModel:
    import tensorflow as tf

    def traced(height: int | None, width: int | None):
        signature = tf.TensorSpec([1, height, width, spec.channels], tf.float32, name="input")

        @tf.function(input_signature=[signature])
        def function(x):
            return _named(call(x))

        return function, function.get_concrete_function()

    try:
        function, concrete = traced(spec.height, spec.width)
    except (ValueError, TypeError, tf.errors.OpError) as exc:
        shape = [1, spec.height, spec.width, spec.channels]
        raise SourceError(f"{path}: cannot trace the model on a {shape} input ({' '.join(str(exc).split())[:300]})") from None
    names = sorted(concrete.structured_outputs)
    model = SourceModel(path, fmt, concrete, trackable or function, spec, names, labels)
    if not free:
        model.fixed_size = f"the model's input is fixed at {spec.width}x{spec.height}"
        return model

    def resized(width: int, height: int) -> SourceModel:
        try:
            fn, c = traced(height, width)
        except (ValueError, TypeError, tf.errors.OpError) as exc:
            raise SizeError(f"the model does not run at {width}x{height} ({' '.join(str(exc).split())[:200]})") from None
        return replace(model, function=c, trackable=trackable or fn, input=replace(spec, width=width, height=height))

    def any_size():
        fn, c = traced(None, None)
        return c, trackable or fn

    model.resized, model.any_size = resized, any_size
    return model


def load_keras(path: Path, options: InputOptions, labels: list[str]) -> SourceModel:
    import tensorflow as tf

    try:
        model = tf.keras.models.load_model(path, compile=False)
    except Exception as exc:  # noqa: BLE001 - Keras raises anything from a bad file
        raise SourceError(f"{path}: cannot load as a Keras model ({' '.join(str(exc).split())[:300]})") from None
    if len(model.inputs) != 1:
        raise SourceError(f"{path}: the model has {len(model.inputs)} inputs; expected one image")
    shape = list(model.inputs[0].shape)
    spec = _spec(path, shape, options)
    return _wrap(path, "keras", lambda x: model(x, training=False), model, spec, labels, _free(shape))


def load_saved_model(path: Path, options: InputOptions, labels: list[str], fmt: str = "saved_model") -> SourceModel:
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as exc:  # noqa: BLE001 - many causes, one message
        raise SourceError(f"{path}: cannot load as a SavedModel ({' '.join(str(exc).split())[:300]})") from None
    signature = loaded.signatures.get("serving_default") if hasattr(loaded, "signatures") else None
    if signature is None:
        raise SourceError(f"{path}: the SavedModel has no serving_default signature")
    _, kwargs = signature.structured_input_signature
    if len(kwargs) != 1:
        raise SourceError(f"{path}: serving_default takes {len(kwargs)} inputs ({', '.join(kwargs)}); expected one image")
    (name, tspec), = kwargs.items()
    shape = tspec.shape.as_list()
    spec = _spec(path, shape, options)
    return _wrap(path, fmt, lambda x: signature(**{name: x}), loaded, spec, labels, _free(shape))


def load_frozen_graph(path: Path, graph_def, inputs: list[str], outputs: list[str], options: InputOptions, labels: list[str]) -> SourceModel:
    import tensorflow as tf

    if len(inputs) != 1 or not outputs:
        raise SourceError(f"{path}: a frozen graph needs --inputs NAME (one image input) and --outputs NAME[,NAME]")
    node = next((n for n in graph_def.node if n.name == node_name(inputs[0])), None)
    if node is None:
        raise SourceError(f"{path}: no tensor {inputs[0]!r} in the graph")
    shape = None
    if "shape" in node.attr and not node.attr["shape"].shape.unknown_rank:
        shape = [d.size if d.size >= 0 else None for d in node.attr["shape"].shape.dim]
    spec = _spec(path, shape or [None, None, None, 3], options)
    pruned = prune(graph_def, path, inputs, outputs)
    keys = [node_name(o).replace("/", "_") for o in outputs]
    dtype = pruned.inputs[0].dtype
    return _wrap(path, "tf_frozen_graph", lambda x: dict(zip(keys, pruned(tf.cast(x, dtype)))), None, spec, labels,
                 shape is None or _free(shape))
