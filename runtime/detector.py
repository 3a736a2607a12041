"""The detector: a bundle (or a recognisable bare .tflite) in, Detections in source pixels out.

MediaPipe Tasks style: an options object, `Detector.create_from_options`, and one `detect` used the
same way on an image, a video frame or a live stream. Built once; every buffer is reused.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .bundle import MANIFEST, Bundle, BundleError, Variant, load_manifest, read_labels, verify_file
from .decoders import Decoder, DecoderContext, DecoderError, create_decoder
from .decoders.ssd_postprocess import looks_like_postprocess
from .decoders.yolo import yolo_layout
from .detections import Detections
from .interpreter import Model, ModelError
from .model_metadata import class_names, read_tflite_metadata
from .preprocess import InputSpec, Preprocessor

# Decoders whose NMS runs in Python, so its IoU can be set per run (TFLite_Detection_PostProcess's is in the model)
_NMS_DECODERS = ("yolo", "ssd_anchors")


@dataclass(frozen=True)
class DetectorOptions:
    model: Path | str  # bundle folder, model.json, or a bare .tflite
    variant: str | None = None  # bundle variant; None = the bundle's default
    threads: int | None = None  # None = the board's cores
    score_threshold: float | None = None  # overrides the manifest's
    iou: float | None = None  # NMS IoU threshold; overrides the manifest's
    labels: Path | str | None = None  # labels file for a bare .tflite (overrides the manifest's)
    backend: str | None = None  # ai_edge_litert | tflite_runtime | tensorflow; None = the first found


@dataclass
class Timings:
    preprocess_ms: float = 0.0
    invoke_ms: float = 0.0
    decode_ms: float = 0.0


def _bare_bundle(path: Path, model: Model, labels: list[str]) -> Bundle:
    """A Bundle for a .tflite with no manifest, when its layout says how to read it."""
    w, h = model.input_size
    metadata = read_tflite_metadata(path)
    labels = labels or class_names(metadata)
    if looks_like_postprocess(model.outputs):
        # TF OD API exports: 0..1 floats or uint8 with the same quantization; RGB, stretched.
        decoder, params = "ssd_postprocess", {}
        spec = InputSpec(w, h, color="rgb", mean=(127.5,) * 3, std=(127.5,) * 3)
    elif len(model.outputs) == 1 and (layout := _bare_yolo_layout(model, metadata)):
        # Ultralytics: RGB, 0..1, letterboxed with grey 114
        decoder, params = "yolo", {"layout": layout}
        spec = InputSpec(w, h, color="rgb", resize="letterbox", mean=(0.0,) * 3, std=(255.0,) * 3)
    else:
        shapes = ", ".join(f"{o.name} {list(o.shape)}" for o in model.outputs)
        raise BundleError(
            f"{path}: no model.json and the outputs are not a recognisable layout "
            f"(TFLite_Detection_PostProcess or a YOLO head): {shapes}; write a model.json (see docs/DESIGN.md)"
        )
    if model.input_channels == 1:
        spec = InputSpec(w, h, color="gray", resize=spec.resize, mean=spec.mean[:1], std=spec.std[:1])
    return Bundle(path=path.parent, name=path.stem, input=spec, decoder=decoder, decoder_params=params,
                  labels=labels, variants=[Variant(name="default", file=path)], default_variant="default")


def _bare_yolo_layout(model: Model, metadata: dict) -> str | None:
    layout = yolo_layout(model.outputs[0], model.input_size)
    if metadata.get("end2end") is True and model.outputs[0].shape[-1] == 6:
        return "end2end"  # Ultralytics says so: a [1, N, 6] head whose N is a grid count too
    return layout


class Detector:
    def __init__(self, options: DetectorOptions, bundle: Bundle, variant: Variant, model: Model, decoder: Decoder, preprocessor: Preprocessor):
        self.options = options
        self.bundle = bundle
        self.variant = variant
        self.model = model
        self.decoder = decoder
        self.preprocessor = preprocessor
        self.labels = bundle.labels
        self.timings = Timings()
        self._input = np.empty(model.input.shape, model.input.dtype)

    @classmethod
    def create_from_options(cls, options: DetectorOptions) -> Detector:
        path = Path(options.model)
        if not path.exists():
            raise BundleError(f"{path}: no such file or folder")
        labels = read_labels(Path(options.labels)) if options.labels else None
        manifest = path / MANIFEST if path.is_dir() else (path if path.suffix == ".json" else path.with_name(MANIFEST))
        if path.is_dir() or path.suffix == ".json" or (manifest.is_file() and path.name == "model.tflite"):
            bundle = load_manifest(manifest)
            variant = bundle.variant(options.variant)
            size = bundle.input_for(variant)
            # a file whose input size is free runs at the size the manifest gives this variant
            model = Model(variant.file, threads=options.threads, backend=options.backend, input_size=(size.width, size.height),
                          verify=lambda digest: verify_file(variant, digest))
            if labels is not None:
                bundle = Bundle(**{**bundle.__dict__, "labels": labels})
        else:
            if path.suffix != ".tflite":
                raise BundleError(f"{path}: expected a bundle folder, a model.json or a .tflite file")
            model = Model(path, threads=options.threads, backend=options.backend)
            bundle = _bare_bundle(path, model, labels or [])
            variant = bundle.variants[0]
        spec = bundle.input_for(variant)
        where = str(manifest if manifest.is_file() else path)
        if (spec.width, spec.height) != model.input_size:
            raise BundleError(f"{where}: input is {spec.width}x{spec.height} but {variant.file.name} takes {model.input_size[0]}x{model.input_size[1]}")
        if spec.channels != model.input_channels:
            raise BundleError(f"{where}: input.color {spec.color!r} has {spec.channels} channels but {variant.file.name} takes {model.input_channels}")
        decoder_name, params = bundle.decoder_for(variant)
        if options.score_threshold is not None:
            params = {**params, "score_threshold": float(options.score_threshold)}
        if options.iou is not None:
            if decoder_name not in _NMS_DECODERS:
                raise BundleError(f"{where}: an NMS IoU cannot be set for the {decoder_name} decoder (its NMS runs inside the model)")
            params = {**params, "nms": {**(params.get("nms") or {}), "iou": float(options.iou)}}
        ctx = DecoderContext(model.outputs, model.input_size, bundle.path if manifest.is_file() else None, where)
        decoder = create_decoder(decoder_name, params, ctx)
        pre = Preprocessor(spec, model.input.dtype, model.input.quantization, model.input_layout)
        return cls(options, bundle, variant, model, decoder, pre)

    @property
    def warnings(self) -> list[str]:
        """What makes this model's results suspect (e.g. scores quantized too coarsely), one line each."""
        check = getattr(self.decoder, "warnings", None)
        return [f"{self.variant.file}: {w}" for w in check()] if check else []

    @property
    def sha256(self) -> str:
        """Hash of the model in use, of the very bytes loaded (what rollout and status compare)."""
        return self.model.sha256

    def infer(self, tensor: np.ndarray) -> Detections:
        """Invoke on an already preprocessed input and decode; boxes stay normalised."""
        t0 = time.perf_counter()
        self.model.set_input(tensor)
        self.model.invoke()
        t1 = time.perf_counter()
        det = self.decoder.decode([self.model.output(o) for o in self.decoder.tensors])
        t2 = time.perf_counter()
        self.timings.invoke_ms = (t1 - t0) * 1e3
        self.timings.decode_ms = (t2 - t1) * 1e3
        return det

    def detect(self, frame: np.ndarray) -> Detections:
        """BGR uint8 frame -> Detections in the frame's pixels."""
        t0 = time.perf_counter()
        tensor, transform = self.preprocessor(frame, out=self._input)
        self.timings.preprocess_ms = (time.perf_counter() - t0) * 1e3
        return transform.to_source(self.infer(tensor))


__all__ = ["Detector", "DetectorOptions", "Timings", "ModelError", "BundleError", "DecoderError"]

