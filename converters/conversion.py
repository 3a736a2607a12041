"""`convert`: a source model in; a bundle with measured variants and its report out.

Order of work: read calibration and held-out frames; load the source; take the source's reference
outputs on the held-out frames; convert each variant (float32 always, as the size reference);
write the bundle into a staging folder; load every variant back through the runtime (`Detector`
for detectors, `Model` otherwise) to measure latency and fidelity exactly as the board will run
it; write the report and the manifest; move the bundle into place.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from runtime import __version__
from runtime.bundle import MANIFEST, MODEL, BundleError, input_to_json, load_manifest, sha256_file, write_manifest
from runtime.decoders import DecoderError
from runtime.detector import Detector, DetectorOptions
from runtime.interpreter import Model, ModelError, default_threads
from runtime.preprocess import InputSpec, Preprocessor

from . import fidelity, measure, quantize
from .errors import ConversionError, SourceError
from .flatbuffer import append_detection_postprocess, rename_outputs
from .outputs import match_outputs
from .progress import Progress
from .samples import Samples, load_samples
from .sources import InputOptions, SourceModel, load_source
from .sources.base import call
from .staging import staged_folder
from .yolo.head import HeadOptions
from .yolo.source import with_head

REPORT = "report.json"
ANCHORS = "anchors.npy"
VARIANT_NAMES = {"int8": "int8", "float16": "float16", "dynamic": "dynamic", "none": "float32"}
POSTPROCESS_SUFFIX = "-postprocess"


@dataclass
class ConvertOptions:
    source: Path
    output: Path
    calibration: Path
    quantize: list[str] = field(default_factory=lambda: ["int8"])
    io_type: str = "uint8"
    samples: int = 100
    held_out: int = 40
    postprocess: list[str] = field(default_factory=list)  # modes that also get a TFLite_Detection_PostProcess variant
    measure_only: list[str] = field(default_factory=list)  # variant names reported but not shipped
    threads: int | None = None
    runs: int = 20
    name: str | None = None
    labels: list[str] = field(default_factory=list)
    input: InputOptions = field(default_factory=InputOptions)
    inputs: list[str] | None = None
    outputs: list[str] | None = None
    head: HeadOptions = field(default_factory=HeadOptions)  # --decoder, --iou, --score


@dataclass
class _Variant:
    name: str
    mode: str
    postprocess: bool
    data: bytes = b""
    seconds: float = 0.0

    @property
    def file(self) -> str:
        return f"model-{self.name}.tflite"


def _variants(opts: ConvertOptions, source: SourceModel) -> list[_Variant]:
    for mode in [*opts.quantize, *opts.postprocess]:
        if mode not in quantize.MODES:
            raise SourceError(f"--quantize: {mode!r} is not one of {', '.join(quantize.MODES)}")
    if opts.postprocess and (not source.is_detector or source.head.anchors is None):
        what = f"a {source.head.decoder} detector" if source.is_detector else f"a {source.format} model"
        raise SourceError(f"{source.path}: --postprocess needs a recognised SSD detector (this is {what})")
    out = [_Variant(VARIANT_NAMES[m], m, False) for m in dict.fromkeys(opts.quantize)]
    out += [_Variant(VARIANT_NAMES[m] + POSTPROCESS_SUFFIX, m, True) for m in dict.fromkeys(opts.postprocess)]
    names = {v.name for v in out}
    unknown = sorted(set(opts.measure_only) - names)
    if unknown:
        raise SourceError(f"--measure-only: {', '.join(unknown)} is not a variant being built ({', '.join(sorted(names))})")
    if all(v.name in opts.measure_only for v in out):
        raise SourceError("--measure-only: at least one variant must be shipped in the bundle")
    return out


def _convert_variant(v: _Variant, source: SourceModel, opts: ConvertOptions, calibration: list[np.ndarray]) -> None:
    head = source.head
    function = head.scored_function if v.postprocess else _function(source)
    t0 = time.monotonic()
    data = quantize.convert(
        function, source.trackable, v.mode, source=source.path, io_type=opts.io_type,
        representative=(lambda: iter(calibration)) if v.mode == "int8" else None,
    )
    try:
        names = match_outputs(data, call(function, calibration[0]), calibration[0])
    except ValueError as exc:
        raise ConversionError(f"{source.path}: {v.name}: {exc}") from None
    data = rename_outputs(data, names)
    if v.postprocess:
        p = head.params
        data = append_detection_postprocess(
            data, head.anchors, num_classes=head.num_classes, scales=p["scales"], iou=p["nms"]["iou"],
            score_threshold=head.nms_score_threshold, max_detections=p["nms"]["max_detections"],
            boxes_output=names.index("boxes"), scores_output=names.index("scores"),
        )
    v.data, v.seconds = data, time.monotonic() - t0


def _function(source: SourceModel):
    """What the variants are converted from: the source's function, or its head's own (a cut head)."""
    return source.head.function if source.head is not None and source.head.function is not None else source.function


def _manifest(opts: ConvertOptions, source: SourceModel, variants: list[_Variant], default: str) -> dict:
    head = source.head
    if head is not None:
        output = {"decoder": head.decoder, "params": {**head.params, **head.output_params}}
    else:
        output = {"decoder": "raw", "params": {"outputs": source.output_names}}
    entries = []
    for v in variants:
        entry = {"name": v.name, "file": MODEL if v.name == default else v.file, "quantization": v.mode,
                 "size_bytes": len(v.data)}
        if v.postprocess:
            entry["output"] = {"decoder": "ssd_postprocess", "params": {"score_threshold": head.params["score_threshold"]}}
        entries.append(entry)
    spec = source.input
    return {
        "schema_version": 1,
        "name": opts.name or opts.output.name,
        "labels": source.labels,
        "source": {"file": source.path.name, "format": source.format, "sha256": sha256_file(source.path) if source.path.is_file() else None},
        "input": input_to_json(spec),
        "output": output,
        "default_variant": default,
        "variants": entries,
        "report": REPORT,
        "converter": {"edgewatch": __version__, "tensorflow": _tf_version(), "created": datetime.now(timezone.utc).isoformat(timespec="seconds")},
    }


def _tf_version() -> str:
    import tensorflow as tf

    return tf.__version__


def _fidelity_detector(folder: Path, variant: str, held_out: list[np.ndarray], references, threads: int, reference_score: float) -> dict:
    det = Detector.create_from_options(
        DetectorOptions(model=folder, variant=variant, threads=threads, score_threshold=fidelity.PREDICTION_SCORE)
    )
    if det.warnings:  # e.g. scores quantized too coarsely to mean anything: no fidelity figure can pass it
        raise ConversionError(f"{variant}: {det.warnings[0]}")
    return fidelity.map50([det.detect(f) for f in held_out], references, reference_score=reference_score)


def _fidelity_raw(path: Path, spec: InputSpec, names: list[str], held_out: list[np.ndarray], references, threads: int) -> dict:
    model = Model(path, threads=threads)
    pre = Preprocessor(spec, model.input.dtype, model.input.quantization, model.input_layout)
    by_name = {o.name: o for o in model.outputs}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ConversionError(f"{path}: converted model lacks outputs {missing}")
    outs = []
    for frame in held_out:
        tensor, _ = pre(frame)
        model.set_input(tensor)
        model.invoke()
        outs.append([by_name[n].dequantize(model.output(by_name[n])) for n in names])
    return fidelity.similarity(outs, references)


def _measure(opts: ConvertOptions, source: SourceModel, samples: Samples, references: list, variants: list[_Variant],
             manifest: dict, folder: Path, reference_size: int, threads: int, progress: Progress) -> list[dict]:
    """Latency, fidelity and float ops of every variant, loaded back as the runtime loads them.
    Fills each manifest entry's sha256 and metrics; returns the report's rows."""
    bundle = load_manifest(folder / MANIFEST)  # what the runtime will read, checked now
    progress.step(f"timing {len(variants)} variant(s), {opts.runs} rounds, {threads} thread(s)")
    paths = [folder / e["file"] for e in manifest["variants"]]
    costs = measure.latencies(paths, bundle.input, samples.held_out[0], threads, runs=opts.runs)
    rows = []
    for v, entry, path, cost in zip(variants, manifest["variants"], paths, costs):
        progress.step(f"fidelity of {v.name} on {len(samples.held_out)} held-out samples")
        if source.is_detector:
            fid = _fidelity_detector(folder, v.name, samples.held_out, references, threads, source.head.reference_score)
        else:
            fid = _fidelity_raw(path, bundle.input, source.output_names, samples.held_out, references, threads)
        row = {
            "name": v.name,
            "file": entry["file"] if v.name not in opts.measure_only else None,
            "quantization": v.mode,
            "io_type": opts.io_type if v.mode == "int8" else "float",
            "decoder": (entry.get("output") or manifest["output"])["decoder"],
            "size_bytes": len(v.data),
            "size_ratio": round(len(v.data) / reference_size, 4),
            **cost,
            "fidelity": fid,
            "peak_rss_mb": measure.peak_rss_mb(folder, v.name, threads) if source.is_detector else None,
            "float_ops": measure.float_ops(v.data) if v.mode == "int8" else None,
            "convert_seconds": round(v.seconds, 2),
            "shipped": v.name not in opts.measure_only,
        }
        rows.append(row)
        entry["sha256"] = sha256_file(path)
        entry["metrics"] = {"latency_ms": row["latency_ms"], "threads": row["threads"], "peak_rss_mb": row["peak_rss_mb"],
                            "fidelity": {"metric": fid["metric"], "value": fid["value"]},
                            "size_ratio": row["size_ratio"]}
    return rows


def convert(opts: ConvertOptions, progress: Progress | None = None) -> dict:
    """Builds the bundle at `opts.output` and returns its report (also written as report.json)."""
    progress = progress or Progress(enabled=False)
    threads = opts.threads or default_threads()
    started = time.monotonic()
    with staged_folder(opts.output, MANIFEST) as folder, tempfile.TemporaryDirectory(prefix="edgewatch-convert-") as work:
        progress.step(f"reading samples from {opts.calibration}")  # first: a bad path fails in a second, not after the model loads
        samples: Samples = load_samples(opts.calibration, opts.samples, opts.held_out)
        progress.step(f"loading {opts.source}")
        source = load_source(opts.source, Path(work), opts.input, opts.labels, opts.inputs, opts.outputs)
        source = with_head(source, opts.head, Path(work), opts.input.resize is not None, samples.calibration[0])
        variants = _variants(opts, source)
        float_pre = Preprocessor(source.input, np.float32)
        calibration = [float_pre(f)[0] for f in samples.calibration]

        progress.step("source model on the held-out samples", len(samples.held_out))
        references = []
        for i, frame in enumerate(samples.held_out):
            references.append(source.head.reference(frame) if source.is_detector else source.run(float_pre(frame)[0]))
            progress.update(i + 1)

        reference_size = None
        for v in variants:
            progress.step(f"converting {v.name}")
            _convert_variant(v, source, opts, calibration)
            if v.mode == "none" and not v.postprocess:
                reference_size = len(v.data)
        if reference_size is None:
            progress.step("converting float32 (the size reference)")
            reference_size = len(quantize.convert(_function(source), source.trackable, "none", source=source.path))

        default = next(v.name for v in variants if v.name not in opts.measure_only)
        for v in variants:
            (folder / (MODEL if v.name == default else v.file)).write_bytes(v.data)
        if source.is_detector and source.head.anchors is not None:
            np.save(folder / ANCHORS, source.head.anchors)
        manifest = _manifest(opts, source, variants, default)
        write_manifest(folder, manifest)
        try:
            rows = _measure(opts, source, samples, references, variants, manifest, folder, reference_size, threads, progress)
        except (BundleError, ModelError, DecoderError) as exc:
            # the runtime refusing what the converter wrote is a conversion failure, not bad input
            raise ConversionError(f"{opts.source}: the converted bundle does not load in the runtime: {exc}") from None

        report = {
            "bundle": str(opts.output),
            "source": manifest["source"],
            "samples": {**samples.description, "calibration": len(samples.calibration), "held_out": len(samples.held_out)},
            "float32_size_bytes": reference_size,
            "fidelity_reference": (
                f"{source.head.reference_text}; its detections with score >= {source.head.reference_score} are the ground truth"
                if source.is_detector
                else "the source model's outputs on the same preprocessed float32 inputs"
            ),
            "variants": rows,
            "converter": manifest["converter"],
            "wall_seconds": None,
        }
        manifest["variants"] = [e for e in manifest["variants"] if e["name"] not in opts.measure_only]
        for v in variants:
            if v.name in opts.measure_only:
                (folder / v.file).unlink(missing_ok=True)
        write_manifest(folder, manifest)
        load_manifest(folder / MANIFEST)
        report["wall_seconds"] = round(time.monotonic() - started, 1)
        (folder / REPORT).write_text(json.dumps(report, indent=2) + "\n")
    progress.done(f"wrote {opts.output} in {report['wall_seconds']:.0f}s")
    return report
