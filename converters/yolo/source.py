"""A source model whose outputs hold a YOLO head: decoded as Ultralytics decodes it.

`attach` turns a loaded source (ONNX through onnx2tf, SavedModel, Keras) into a detector source:
the head recognised (head.py), labels and input size from the exporter's metadata, the input
letterboxed as Ultralytics letterboxes (grey 114, centred; unless --resize says otherwise), NMS and
score threshold at Ultralytics' defaults (IoU 0.7, conf 0.25) unless the command line sets them,
and a v8 head cut before its final concat (cut.py) so that int8 quantizes boxes and scores apart.
The fidelity reference is the source's own float function on the same letterboxed input, decoded
by the runtime's decoder: the source's detections, which a variant's are measured against.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from runtime.decoders import DecoderContext
from runtime.decoders.yolo import DEFAULT_NMS, DEFAULT_SCORE, YoloDecoder
from runtime.detections import Detections
from runtime.interpreter import TensorInfo
from runtime.model_metadata import class_names, input_size, parse_value
from runtime.preprocess import Preprocessor

from ..errors import SourceError
from ..onnx import onnx_description
from ..sources.base import DetectorHead, SourceModel, call
from .cut import split_head
from .head import HeadOptions, YoloHead, recognise

log = logging.getLogger(__name__)


def _outputs(source: SourceModel) -> dict[str, tuple]:
    structured = source.function.structured_outputs
    return {name: tuple(structured[name].shape.as_list()) for name in source.output_names}


def _params(head: YoloHead, options: HeadOptions, coordinates: str) -> dict:
    nms = {"method": DEFAULT_NMS.method, "iou": DEFAULT_NMS.iou if options.iou is None else float(options.iou),
           "max_detections": DEFAULT_NMS.max_detections, "per_class": DEFAULT_NMS.per_class}
    return {"layout": head.layout, "coordinates": coordinates,
            "score_threshold": DEFAULT_SCORE if options.score_threshold is None else float(options.score_threshold), "nms": nms}


def _coordinates(source: SourceModel, head: YoloHead, sample: np.ndarray) -> str:
    """Pixels or normalised, measured: the boxes of a real letterboxed frame, run through the source."""
    raw = call(source.function, sample)[head.output][0]
    boxes = raw[:4] if head.layout == "v8" else raw[:, :4]
    return "pixels" if float(np.abs(boxes).max()) > 2.0 else "normalized"


def attach(source: SourceModel, options: HeadOptions, metadata: dict, explicit_resize: bool, sample_frame: np.ndarray) -> SourceModel:
    """`source` as a YOLO detector, or unchanged when it is not a detector. Raises SourceError."""
    spec = source.input
    head = recognise(source.path, _outputs(source), (spec.width, spec.height), metadata, options.decoder)
    if head is None:
        return source
    size = input_size(metadata)
    if size is not None and size != (spec.width, spec.height):
        log.warning("%s: the metadata says imgsz %dx%d but the model takes %dx%d", source.path, *size, spec.width, spec.height)
    if not explicit_resize:
        spec = replace(spec, resize="letterbox", pad_value=114)
    elif spec.resize != "letterbox":
        log.warning("%s: a YOLO model resized by %s: Ultralytics trains and predicts letterboxed (--resize letterbox)", source.path, spec.resize)
    labels = source.labels or class_names(metadata)
    if labels and head.num_classes and len(labels) != head.num_classes:
        raise SourceError(f"{source.path}: {len(labels)} labels for a head with {head.num_classes} classes")
    sample = Preprocessor(spec, np.float32)(sample_frame)[0]
    params = _params(head, options, _coordinates(source, head, sample))

    reference_decoder = YoloDecoder(
        {**params, "output": head.output},
        DecoderContext([TensorInfo(head.output, 0, head.shape, np.dtype(np.float32), None)], (spec.width, spec.height), None, str(source.path)),
    )
    pre = Preprocessor(spec, np.float32)

    def reference(frame_bgr: np.ndarray) -> Detections:
        tensor, transform = pre(frame_bgr)
        out = call(source.function, tensor)
        return transform.to_source(reference_decoder.decode([out[head.output]]))

    cut = split_head(source.function, head) if head.layout == "v8" else None
    if cut is not None:
        function, output_params = cut, {"boxes": "boxes", "scores": "scores"}
    else:
        function, output_params = None, {"output": head.output}
        log.warning("%s: %s head %s kept whole: an int8 variant quantizes boxes and scores with one scale",
                    source.path, head.layout, list(head.shape))
    detector = DetectorHead(
        decoder="yolo", params=params, anchors=None, num_classes=head.num_classes, reference=reference,
        output_params=output_params, function=function, reference_score=params["score_threshold"],
        reference_text=f"the source model run in float32 on the same letterboxed frames, its head decoded as Ultralytics "
                       f"does (NMS IoU {params['nms']['iou']})",
    )
    log.info("%s: YOLO %s head %s, %d classes, %s boxes%s", source.path, head.layout, list(head.shape), head.num_classes,
             params["coordinates"], ", cut before its final concat" if cut is not None else "")
    return replace(source, input=spec, labels=labels, head=detector,
                   output_names=["boxes", "scores"] if cut is not None else source.output_names)


def with_head(source: SourceModel, options: HeadOptions, workdir: Path, explicit_resize: bool, sample_frame: np.ndarray) -> SourceModel:
    """The loaded source with the command line's head options applied: an SSD's NMS settings
    overridden, a YOLO head recognised (from the function's outputs and, for ONNX, the file's
    metadata), or a one-line SourceError for a detector whose head is not recognised."""
    if source.is_detector:  # an SSD, recognised by its loader: the command line's NMS settings over the graph's own
        if options.decoder is not None:
            raise SourceError(f"{source.path}: --decoder {options.decoder}: this is a TF Object Detection API SSD, decoded as one")
        if options.iou is not None:
            source.head.params["nms"] = {**source.head.params.get("nms", {}), "iou": options.iou}
        if options.score_threshold is not None:
            source.head.params["score_threshold"] = options.score_threshold
        return source
    metadata = {}
    if source.format == "onnx":
        metadata = {k: parse_value(v) for k, v in onnx_description(workdir / "onnx").get("metadata", {}).items()}
    return attach(source, options, metadata, explicit_resize, sample_frame)
