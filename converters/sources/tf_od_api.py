"""TF Object Detection API SSD graphs: find the raw head by structure and cut it out.

An exported OD API SSD graph runs preprocessing (resize, scale), the network, and a post-processor
(box decoding, score conversion, NMS) that TFLite cannot run with builtin ops. The converter keeps
the network only: from the preprocessed input to the raw box encodings and class logits. The rest
is read from the graph, not assumed: the anchors (evaluated), the box coder's scales and the score
conversion (from the post-processor's ops), the NMS thresholds (from its constants), the input size
and resize flavour (from the preprocessor's resize op) and the pixel scaling (measured by running
the preprocessor on flat grey images). The well-known tensor names are the fallback only.

The network is convolutional, so it also runs at other input sizes; the anchors, a constant of the
graph made for its own size, are then regenerated for the feature maps the network produces at
that size (measured by running it), from the layout of the graph's own anchors, each keeping its
size in pixels (sources/ssd_grid.py).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

from runtime.detections import Detections
from runtime.preprocess import InputSpec

from ..errors import SourceError
from .base import DetectorHead, SizeError, SourceModel
from .graphdef import node_name, prune, tensor_name
from .ssd_grid import GridError, generator_table, multiple_grid_params, read_grid

log = logging.getLogger(__name__)

# Ops that only move or reshape a tensor: walked through when tracing a value to its producer.
_PASSTHROUGH = {"Identity", "Reshape", "Squeeze", "ExpandDims", "Tile", "Transpose", "Unpack"}
_KNOWN = {"input": "Preprocessor/sub", "boxes": "concat", "scores": "concat_1", "anchors": "Concatenate/concat"}
_OUTPUTS = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")
_ACTIVATIONS = {"Sigmoid": "sigmoid", "Softmax": "softmax", "Identity": "none"}


def looks_like_od_api_ssd(graph_def) -> bool:
    names = {n.name for n in graph_def.node}
    return "image_tensor" in names and all(o in names for o in _OUTPUTS) and any(
        n.op == "Exp" and "Postprocessor/" in n.name and "/Decode/" in n.name for n in graph_def.node
    )


class _Graph:
    """Node lookup, consumers and constant values of one GraphDef."""

    def __init__(self, graph_def):
        self.nodes = {n.name: n for n in graph_def.node}
        self.consumers: dict[str, list] = defaultdict(list)
        for n in graph_def.node:
            for i in n.input:
                self.consumers[node_name(i)].append(n)

    def inputs(self, node) -> list[str]:
        return [i for i in node.input if not i.startswith("^")]

    def const(self, name: str) -> np.ndarray | None:
        import tensorflow as tf

        n = self.nodes.get(node_name(name))
        while n is not None and n.op == "Identity":
            n = self.nodes.get(node_name(self.inputs(n)[0]))
        if n is None or n.op != "Const":
            return None
        return tf.make_ndarray(n.attr["value"].tensor)

    def producer(self, name: str) -> str:
        """Walk back through reshapes and identities to the tensor that made the value."""
        n = self.nodes[node_name(name)]
        tensor = name
        while n.op in _PASSTHROUGH:
            tensor = self.inputs(n)[0]
            n = self.nodes[node_name(tensor)]
        return tensor_name(tensor)


def _find_head(g: _Graph) -> dict:
    """Raw tensors, box scales and score conversion from the post-processor's own ops."""
    found: dict = {}
    exps = [n for n in g.nodes.values() if n.op == "Exp" and "/Decode/" in n.name]
    unstack = None
    if exps:
        div = g.nodes.get(node_name(g.inputs(exps[0])[0]))
        if div is not None and div.op == "RealDiv":
            unstack = g.nodes.get(node_name(g.inputs(div)[0]))
    if unstack is not None and unstack.op == "Unpack":
        found["boxes"] = g.producer(g.inputs(unstack)[0])
        scales = [None] * 4
        for c in g.consumers[unstack.name]:
            ins = g.inputs(c)
            if c.op == "RealDiv" and node_name(ins[0]) == unstack.name:
                k = int(ins[0].split(":")[1]) if ":" in ins[0] else 0
                value = g.const(ins[1])
                if value is not None and k < 4:
                    scales[k] = float(value)
        if all(s is not None for s in scales):
            found["scales"] = scales
        scope = unstack.name.rsplit("/", 1)[0]
        for n in g.nodes.values():
            if n.op == "Unpack" and n.name.startswith(scope + "/") and n is not unstack and "center_coordinates" in n.name:
                found["anchors"] = g.producer(g.inputs(n)[0])
                break
    for n in g.nodes.values():
        if n.name.endswith("Postprocessor/convert_scores") and n.op in _ACTIVATIONS:
            found["score"] = _ACTIVATIONS[n.op]
            logits = g.inputs(n)[0]
            src = g.nodes[node_name(logits)]
            if src.op == "RealDiv" and g.const(g.inputs(src)[1]) is not None:
                found["logit_scale"] = float(g.const(g.inputs(src)[1]))
                logits = g.inputs(src)[0]
            found["scores"] = g.producer(logits)
    for n in g.nodes.values():
        if n.op.startswith("NonMaxSuppressionV") and "Postprocessor/" in n.name:
            ins = g.inputs(n)
            iou, score = g.const(ins[3]), g.const(ins[4]) if len(ins) > 4 else None
            if iou is not None:  # not a constant in every export: the default then stands
                found["iou"] = float(iou)
            if score is not None:
                found["nms_score_threshold"] = float(score)
            size = g.nodes[node_name(ins[2])]
            consts = [g.const(i) for i in g.inputs(size)] if size.op == "Minimum" else [g.const(ins[2])]
            consts = [int(c) for c in consts if c is not None]
            if consts:
                found["max_detections"] = consts[0]
        if n.op == "Slice" and n.name.endswith("Postprocessor/Slice"):
            begin = g.const(g.inputs(n)[1])
            found["background_class"] = begin is not None and int(begin.reshape(-1)[-1]) == 1
    return found


def _find_input(g: _Graph) -> tuple[str, object]:
    """The preprocessor's output that the feature extractor reads, and the preprocessor's resize op."""
    resize = next(
        (n for n in g.nodes.values() if n.name.startswith("Preprocessor/") and n.op.startswith("Resize")), None
    )
    candidates = []
    for n in g.nodes.values():
        if not n.name.startswith("Preprocessor/") or n.op.startswith("TensorArray") or n.op == "Const":
            continue
        outside = [c for c in g.consumers[n.name] if not c.name.startswith(("Preprocessor/", "Postprocessor/"))]
        if outside:
            candidates.append(n.name)
    if len(candidates) == 1:
        return tensor_name(candidates[0]), resize
    if _KNOWN["input"] in g.nodes:
        return tensor_name(_KNOWN["input"]), resize
    raise SourceError(f"cannot find the preprocessed input (candidates: {candidates or 'none'})")


def _layer_outputs(g: _Graph, boxes: str) -> list[str]:
    """Per feature map, the box predictor's own output ([1, H, W, k * 4]) that the boxes gather."""
    node = g.nodes[node_name(boxes)]
    while node.op in _PASSTHROUGH:
        node = g.nodes[node_name(g.inputs(node)[0])]
    if node.op not in ("ConcatV2", "Concat"):
        return []
    parts = g.inputs(node)[:-1] if node.op == "ConcatV2" else g.inputs(node)[1:]
    return [g.producer(p) for p in parts]


def _layers(session, input_tensor: str, outputs: list[str], width: int, height: int) -> list[tuple[int, int, int]]:
    """(rows, cols, boxes per cell) of every feature map when the network runs at width x height."""
    values = session.run(outputs, {input_tensor: np.zeros((1, height, width, 3), np.float32)})
    layers = []
    for name, v in zip(outputs, values):
        if v.ndim != 4 or v.shape[3] % 4:
            raise GridError(f"{name} has shape {list(v.shape)}, not [1, H, W, boxes x 4]")
        layers.append((int(v.shape[1]), int(v.shape[2]), int(v.shape[3]) // 4))
    return layers


def _interpolation(resize, path: Path) -> str:
    if resize is None:
        return "linear"
    align = resize.attr["align_corners"].b if "align_corners" in resize.attr else False
    half = resize.attr["half_pixel_centers"].b if "half_pixel_centers" in resize.attr else False
    if resize.op == "ResizeBilinear":
        if align:
            raise SourceError(f"{path}: {resize.name} resizes with align_corners=true, which the runtime does not implement")
        return "linear" if half else "linear_legacy"
    if resize.op == "ResizeNearestNeighbor":
        return "nearest"
    raise SourceError(f"{path}: {resize.name} is a {resize.op}, which the runtime does not implement")


def _normalization(session, input_tensor: str, width: int, height: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) per channel, measured: flat images of 0, 128 and 255 through the preprocessor."""
    values = {}
    for v in (0, 128, 255):
        img = np.full((1, height, width, 3), v, np.uint8)
        values[v] = session.run(input_tensor, {"image_tensor:0": img})[0].reshape(-1, 3).mean(axis=0)
    lo, mid, hi = values[0], values[128], values[255]
    slope = (hi - lo) / 255.0
    if np.any(np.abs(slope) < 1e-9) or not np.allclose(lo + slope * 128, mid, atol=1e-4):
        raise SourceError(f"the preprocessor is not a linear scaling of pixels (0 -> {lo}, 128 -> {mid}, 255 -> {hi})")
    std = 1.0 / slope  # real = (p - mean) / std  =>  real = lo + p / std
    mean = -lo * std
    return tuple(round(float(m), 6) for m in mean), tuple(round(float(s), 6) for s in std)


def load(path: Path, graph_def, labels: list[str]) -> SourceModel:
    import tensorflow as tf

    g = _Graph(graph_def)
    head = _find_head(g)
    for role in ("boxes", "scores", "anchors"):
        if role not in head:
            if _KNOWN[role] not in g.nodes:
                raise SourceError(f"{path}: TF OD API graph without a recognisable {role} tensor")
            log.warning("%s: %s tensor not found by structure; using the usual name %s", path, role, _KNOWN[role])
            head[role] = tensor_name(_KNOWN[role])
    try:
        input_tensor, resize = _find_input(g)
    except SourceError as exc:
        raise SourceError(f"{path}: {exc}") from None
    interpolation = _interpolation(resize, path)

    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    session = tf.compat.v1.Session(graph=graph)
    probe = session.run(input_tensor, {"image_tensor:0": np.zeros((1, 64, 64, 3), np.uint8)})
    if probe.ndim != 4 or probe.shape[3] != 3:
        raise SourceError(f"{path}: preprocessed input {input_tensor} has shape {list(probe.shape)}, expected [1, H, W, 3]")
    height, width = int(probe.shape[1]), int(probe.shape[2])
    mean, std = _normalization(session, input_tensor, width, height)
    spec = InputSpec(width, height, "rgb", "stretch", interpolation, mean, std)

    zeros = np.zeros((1, height, width, 3), np.float32)
    boxes, logits, corners = session.run([head["boxes"], head["scores"], head["anchors"]], {input_tensor: zeros})
    n = corners.shape[0]
    if boxes.size != n * 4 or logits.shape[:2] != (1, n):
        raise SourceError(f"{path}: {head['boxes']} {list(boxes.shape)}, {head['scores']} {list(logits.shape)} and {n} anchors do not line up")
    ymin, xmin, ymax, xmax = corners.T
    anchors = np.stack([(ymin + ymax) / 2, (xmin + xmax) / 2, ymax - ymin, xmax - xmin], axis=1).astype(np.float32)
    background = head.get("background_class", True)
    num_classes = logits.shape[2] - (1 if background else 0)
    labels = labels or [f"class_{i}" for i in range(num_classes)]
    if len(labels) < num_classes:
        raise SourceError(f"{path}: the model has {num_classes} classes but only {len(labels)} labels were given")

    raw = prune(graph_def, path, [input_tensor], [head["boxes"], head["scores"]])
    scale = head.get("logit_scale", 1.0)
    activation = head.get("score", "sigmoid")

    def functions(width: int | None, height: int | None):
        """The raw network (and its scored form, for TFLite_Detection_PostProcess) on [1, H, W, 3];
        None for a size the model file will take at run time."""
        spec_in = tf.TensorSpec([1, height, width, 3], tf.float32, name="input")

        @tf.function(input_signature=[spec_in])
        def network(x):
            b, s = raw(x)
            return {"boxes": tf.reshape(b, [1, -1, 4]), "scores": s / scale if scale != 1.0 else s}

        @tf.function(input_signature=[spec_in])
        def scored(x):
            b, s = raw(x)
            s = s / scale if scale != 1.0 else s
            s = {"sigmoid": tf.sigmoid, "softmax": tf.nn.softmax, "none": tf.identity}[activation](s)
            return {"boxes": tf.reshape(b, [1, -1, 4]), "scores": s}

        return network, scored

    network, scored = functions(width, height)
    fetch = [f"{o}:0" for o in _OUTPUTS]

    def reference(frame_bgr: np.ndarray) -> Detections:
        rgb = np.ascontiguousarray(frame_bgr[:, :, ::-1])[None]
        b, s, c, k = session.run(fetch, {"image_tensor:0": rgb})
        k = int(k[0])
        h, w = frame_bgr.shape[:2]
        xyxy = b[0, :k][:, [1, 0, 3, 2]] * np.array([w, h, w, h], np.float32)
        return Detections(xyxy, s[0, :k], c[0, :k].astype(np.int32) - 1)  # the graph adds a label offset of 1

    params = {
        "coder": "ssd",
        "scales": head.get("scales", [10.0, 10.0, 5.0, 5.0]),
        "anchors": "anchors.npy",
        "score": activation,
        "background_class": bool(background),
        "score_threshold": 0.5,
        "nms": {"method": "greedy", "iou": round(head.get("iou", 0.6), 6), "max_detections": head.get("max_detections", 100), "per_class": True},
    }
    log.info("%s: TF OD API SSD: input %s (%dx%d, %s), boxes %s, scores %s (%s), anchors %s (%d), scales %s, nms %s",
             path, input_tensor, width, height, interpolation, head["boxes"], head["scores"], activation, head["anchors"], n, params["scales"], params["nms"])
    nms_threshold = head.get("nms_score_threshold") or 1e-8

    def model_at(w: int, h: int, net, post, size_anchors: np.ndarray, anchors_param) -> SourceModel:
        return SourceModel(
            path=path,
            format="tf_od_api_ssd",
            function=net.get_concrete_function(),
            trackable=net,
            input=replace(spec, width=w, height=h),
            output_names=["boxes", "scores"],
            labels=labels[:num_classes],
            head=DetectorHead("ssd_anchors", {**params, "anchors": anchors_param}, size_anchors, num_classes, reference,
                              post.get_concrete_function(), nms_score_threshold=nms_threshold),
            resized=resized if grid is not None else None,
            any_size=any_size if grid is not None else None,
            fixed_size=fixed,
        )

    # Other sizes: the feature extractor is convolutional, so the network runs at any size; the
    # anchors (a constant of the graph, for its own size) are regenerated for that size's grids.
    layer_tensors = _layer_outputs(g, head["boxes"])
    grid, grid_params, fixed = None, None, ""
    try:
        if not layer_tensors:
            raise GridError(f"{head['boxes']} is not gathered from per-feature-map outputs")
        grid = read_grid(anchors, _layers(session, input_tensor, layer_tensors, width, height))
        grid_params = multiple_grid_params(grid)
    except GridError as exc:
        fixed = f"its anchors cannot be regenerated for another input size ({exc})"

    def resized(w: int, h: int) -> SourceModel:
        try:
            layers = _layers(session, input_tensor, layer_tensors, w, h)
        except (tf.errors.OpError, GridError) as exc:
            raise SizeError(f"the network does not run at {w}x{h} ({' '.join(str(exc).split())[:200]})") from None
        if [k for _, _, k in layers] != [len(s) for s in grid.shapes] or any(r < 1 or c < 1 for r, c, _ in layers):
            raise SizeError(f"at {w}x{h} the feature maps are {[(r, c) for r, c, _ in layers]}, which cannot hold the anchor layout")
        maps = [(r, c) for r, c, _ in layers]
        scale = (height / h, width / w)  # anchors keep their size in pixels (ssd_grid.py)
        param = generator_table(grid_params, maps, scale) if grid_params else f"anchors-{w}x{h}.npy"
        net, post = functions(w, h)
        return model_at(w, h, net, post, grid.anchors(maps, scale), param)

    def any_size():
        net, _ = functions(None, None)
        return net.get_concrete_function(), net

    return model_at(width, height, network, scored, anchors, "anchors.npy")
