"""`convert`: a source model in; a bundle with measured variants and its report out.

Order of work: read calibration and held-out frames; load the source (and, with `sizes`, the
source at each other input size: sizes.py); take the source's reference outputs on the held-out
frames, at its own size; convert each variant (float32 always, as the size reference); write the
bundle into a staging folder; load every variant back through the runtime (`Detector` for
detectors, `Model` otherwise) to measure latency and fidelity exactly as the board will run it;
mark the variants no other variant beats on both fidelity and cost (frontier.py); write the report
and the manifest; move the bundle into place.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from runtime import __version__
from runtime.bundle import MANIFEST, MODEL, BundleError, input_to_json, load_manifest, sha256_file, write_manifest
from runtime.decoders import DecoderError
from runtime.detector import Detector, DetectorOptions
from runtime.interpreter import Model, ModelError, default_threads
from runtime.preprocess import InputSpec, Preprocessor

from . import fidelity, frontier, measure, quantize
from .compress.sweep import PruneOptions, SweepResult, sweep
from .errors import ConversionError, SourceError
from .flatbuffer import append_detection_postprocess, rename_outputs, set_input_size
from .outputs import match_outputs
from .progress import Progress
from .samples import Samples, load_samples
from .sizes import SIZE_FILES, SizePlan, plan_sizes, size_name
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
    sizes: list[tuple[int, int]] = field(default_factory=list)  # (width, height); the source's own is always built
    size_files: str = "shared"  # shared | separate: see sizes.py
    prune: PruneOptions | None = None  # the pruning sweep (compress/); its chosen points become variants


@dataclass
class _Variant:
    name: str
    mode: str
    postprocess: bool
    source: SourceModel  # the model at this variant's input size
    sized: bool = False  # an input size other than the source's own
    shares: _Variant | None = None  # the variant whose file this one runs at its own size
    measure_only: bool = False
    data: bytes = b""
    seconds: float = 0.0
    own_file: str = ""  # set once the default variant is known (it is model.tflite)
    # a pruning sweep's chosen network ("pruned": zeroed weights, stored sparse where smaller;
    # "channels": a narrower network); shipped only at or above the sweep's fidelity threshold
    compressed: str = ""

    @property
    def file(self) -> str:
        return self.shares.file if self.shares is not None else self.own_file

    @property
    def size(self) -> tuple[int, int]:
        return self.source.input.width, self.source.input.height


def _variants(opts: ConvertOptions, plan: SizePlan) -> list[_Variant]:
    source = plan.built[plan.full]
    for mode in [*opts.quantize, *opts.postprocess]:
        if mode not in quantize.MODES:
            raise SourceError(f"--quantize: {mode!r} is not one of {', '.join(quantize.MODES)}")
    if opts.postprocess and (not source.is_detector or source.head.anchors is None):
        what = f"a {source.head.decoder} detector" if source.is_detector else f"a {source.format} model"
        raise SourceError(f"{source.path}: --postprocess needs a recognised SSD detector (this is {what})")
    if opts.size_files not in SIZE_FILES:
        raise SourceError(f"--size-files: {opts.size_files!r} is not one of {', '.join(SIZE_FILES)}")
    modes = list(dict.fromkeys(opts.quantize))
    out = [_Variant(VARIANT_NAMES[m], m, False, source) for m in modes]
    # TFLite_Detection_PostProcess holds one size's anchors inside the file: the source's size only.
    out += [_Variant(VARIANT_NAMES[m] + POSTPROCESS_SUFFIX, m, True, source) for m in dict.fromkeys(opts.postprocess)]
    for size, sized in plan.built.items():
        if size != plan.full:
            out += [_Variant(size_name(VARIANT_NAMES[m], size), m, False, sized, sized=True) for m in modes]
    names = {v.name for v in out}
    unknown = sorted(set(opts.measure_only) - names)
    if unknown:
        raise SourceError(f"--measure-only: {', '.join(unknown)} is not a variant being built ({', '.join(sorted(names))})")
    for v in out:
        # a quantization measured only is measured only at every size
        v.measure_only = v.name in opts.measure_only or (v.sized and VARIANT_NAMES[v.mode] in opts.measure_only)
    if all(v.measure_only for v in out):
        raise SourceError("--measure-only: at least one variant must be shipped in the bundle")
    if opts.size_files == "shared" and source.any_size is not None:
        for v in out:
            if v.sized:
                v.shares = next(u for u in out if u.mode == v.mode and not u.sized and not u.postprocess)
    return out


def _finish(v: _Variant, data: bytes, function, calibration: list[np.ndarray]) -> tuple[bytes, list[str]]:
    """Outputs named after the source's (matched by value on a real sample), and those names in order."""
    try:
        names = match_outputs(data, call(function, calibration[0]), calibration[0])
    except ValueError as exc:
        raise ConversionError(f"{v.source.path}: {v.name}: {exc}") from None
    return rename_outputs(data, names), names


def _convert_variant(v: _Variant, opts: ConvertOptions, calibration: list[np.ndarray]) -> None:
    source = v.source
    head = source.head
    function = head.scored_function if v.postprocess else _function(source)
    t0 = time.monotonic()
    data = _smallest(
        quantize.convert(function, source.trackable, v.mode, source=source.path, io_type=opts.io_type, sparse=sparse,
                         representative=(lambda: iter(calibration)) if v.mode == "int8" else None)
        for sparse in ((False, True) if v.compressed == "pruned" else (False,))
    )
    data, names = _finish(v, data, function, calibration)
    if v.postprocess:
        p = head.params
        data = append_detection_postprocess(
            data, head.anchors, num_classes=head.num_classes, scales=p["scales"], iou=p["nms"]["iou"],
            score_threshold=head.nms_score_threshold, max_detections=p["nms"]["max_detections"],
            boxes_output=names.index("boxes"), scores_output=names.index("scores"),
        )
    v.data, v.seconds = data, time.monotonic() - t0


def _smallest(files) -> bytes:
    """A pruned network's zeros stored sparse only where that makes the file smaller: TFLite's
    sparse encoding costs an index per kept weight, more than an int8 weight at low sparsity."""
    return min(files, key=len)


def _function(source: SourceModel):
    """What the variants are converted from: the source's function, or its head's own (a cut head)."""
    return source.head.function if source.head is not None and source.head.function is not None else source.function


def _convert_shared(v: _Variant, opts: ConvertOptions, calibration: list[np.ndarray], every_size: list[np.ndarray]) -> None:
    """One file for every size of `v`'s quantization: the network with its input size left free,
    calibrated (int8) on frames at every size, stored at `v`'s size."""
    function, trackable = v.source.any_size()
    t0 = time.monotonic()
    data = quantize.convert(
        function, trackable, v.mode, source=v.source.path, io_type=opts.io_type,
        representative=(lambda: iter(every_size)) if v.mode == "int8" else None,
    )
    data, _ = _finish(v, set_input_size(data, *v.size), v.source.function, calibration)
    v.data, v.seconds = data, time.monotonic() - t0


def _manifest(opts: ConvertOptions, source: SourceModel, variants: list[_Variant], default: str) -> dict:
    head = source.head
    if head is not None:
        output = {"decoder": head.decoder, "params": {**head.params, **head.output_params}}
    else:
        output = {"decoder": "raw", "params": {"outputs": source.output_names}}
    entries = []
    for v in variants:
        entry = {"name": v.name, "file": v.file, "quantization": v.mode, "size_bytes": len(v.data)}
        if v.sized:
            entry["input_size"] = list(v.size)
            if head is not None:  # that size's anchors: a generator table, or a file written beside the model
                entry["output"] = {"params": {"anchors": v.source.head.params["anchors"]}}
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
    model = Model(path, threads=threads, input_size=(spec.width, spec.height))
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


def _raw_references(v: _Variant, held_out: list[np.ndarray], references: list) -> tuple[list, str | None]:
    """A model that is not a detector, at another size: its outputs against the source's at the
    source's own size when they keep their shapes (a classifier), else against the source at this
    size (dense outputs change shape with the input), which the report then says."""
    pre = Preprocessor(v.source.input, np.float32)
    sized = [v.source.run(pre(f)[0]) for f in held_out]
    if [np.shape(a) for a in sized[0]] == [np.shape(a) for a in references[0]]:
        return references, None
    return sized, f"the source at {v.size[0]}x{v.size[1]}: its outputs at this size differ in shape from those at its own"


def _measure(opts: ConvertOptions, source: SourceModel, samples: Samples, references: list, variants: list[_Variant],
             manifest: dict, folder: Path, reference_size: int, threads: int, progress: Progress) -> list[dict]:
    """Latency, fidelity and float ops of every variant, loaded back as the runtime loads them.
    Fills each manifest entry's sha256 and metrics; returns the report's rows."""
    bundle = load_manifest(folder / MANIFEST)  # what the runtime will read, checked now
    progress.step(f"timing {len(variants)} variant(s), {opts.runs} rounds, {threads} thread(s)")
    specs = [bundle.input_for(bundle.variant(v.name)) for v in variants]
    paths = [folder / e["file"] for e in manifest["variants"]]
    costs = measure.latencies(list(zip(paths, specs)), samples.held_out[0], threads, runs=opts.runs)
    rows = []
    for v, entry, path, spec, cost in zip(variants, manifest["variants"], paths, specs, costs):
        progress.step(f"fidelity of {v.name} on {len(samples.held_out)} held-out samples")
        against = None
        if source.is_detector:
            fid = _fidelity_detector(folder, v.name, samples.held_out, references, threads, source.head.reference_score)
        else:
            refs, against = _raw_references(v, samples.held_out, references) if v.sized else (references, None)
            fid = _fidelity_raw(path, spec, source.output_names, samples.held_out, refs, threads)
        if against:
            fid["against"] = against
        row = {
            "name": v.name,
            "file": entry["file"] if not v.measure_only else None,
            "quantization": v.mode,
            "input_size": list(v.size),
            "shares_file_of": v.shares.name if v.shares is not None else None,
            "io_type": opts.io_type if v.mode == "int8" else "float",
            "decoder": (entry.get("output") or {}).get("decoder") or manifest["output"]["decoder"],
            "size_bytes": len(v.data),
            "size_ratio": round(len(v.data) / reference_size, 4),
            **cost,
            "fidelity": fid,
            "peak_rss_mb": measure.peak_rss_mb(folder, v.name, threads) if source.is_detector else None,
            "float_ops": measure.float_ops(v.data) if v.mode == "int8" else None,
            "convert_seconds": round(v.seconds, 2),
            "shipped": not v.measure_only,
        }
        rows.append(row)
        entry["sha256"] = sha256_file(path)
        entry["metrics"] = {"latency_ms": row["latency_ms"], "threads": row["threads"], "peak_rss_mb": row["peak_rss_mb"],
                            "fidelity": {"metric": fid["metric"], "value": fid["value"]},
                            "size_ratio": row["size_ratio"]}
    frontier.mark(rows)
    return rows


def _point_fidelity(opts: ConvertOptions, model: SourceModel, samples: Samples, references: list, threads: int,
                    folder: Path, first_input: np.ndarray) -> dict:
    """A pruning point's fidelity, measured as a variant's: its float32 file loaded by the runtime."""
    v = _Variant("float32", "none", False, model, own_file=MODEL)
    _convert_variant(v, opts, [first_input])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MODEL).write_bytes(v.data)
    if model.is_detector and model.head.anchors is not None:
        np.save(folder / ANCHORS, model.head.anchors)
    write_manifest(folder, _manifest(opts, model, [v], v.name))
    if model.is_detector:
        return _fidelity_detector(folder, v.name, samples.held_out, references, threads, model.head.reference_score)
    return _fidelity_raw(folder / MODEL, model.input, model.output_names, samples.held_out, references, threads)


def _prune(opts: ConvertOptions, source: SourceModel, samples: Samples, references: list, threads: int, work: Path,
           progress: Progress) -> SweepResult:
    pre = Preprocessor(source.input, np.float32)
    train = [pre(f)[0] for f in samples.calibration]
    held_out = [pre(f)[0] for f in samples.held_out]

    def measure_point(model: SourceModel, name: str) -> dict:
        progress.step(f"fidelity of {name} on {len(samples.held_out)} held-out samples")
        try:
            return _point_fidelity(opts, model, samples, references, threads, work / "point", train[0])
        except (BundleError, ModelError, DecoderError) as exc:
            raise ConversionError(f"{opts.source}: {name}: the pruned network does not load in the runtime: {exc}") from None

    return sweep(source, _function(source), train, held_out, opts.prune, measure_point, progress)


def _pruning_report(options: PruneOptions, result: SweepResult, variants: list[_Variant], rows: list[dict]) -> dict:
    """The sweep's record; the chosen points' variants below the threshold are not shipped."""
    for v, row in zip(variants, rows):
        if not v.compressed:
            continue
        row["compressed"] = v.compressed
        if v.compressed == "pruned":
            row["sparse"] = measure.sparse_kernels(v.data, v.mode)
        if row["fidelity"]["value"] is None or row["fidelity"]["value"] < options.min_fidelity:
            v.measure_only, row["shipped"], row["file"] = True, False, None
            row["dropped"] = f"fidelity below {options.min_fidelity}"
    return {
        "methods": options.methods, "sparsities": options.sparsities, "min_fidelity": options.min_fidelity,
        "distill_steps": options.distill_steps, "distill_seconds": options.distill_seconds,
        "weights": result.weights, "points": result.points, "chosen": [{"name": c.name, **c.point} for c in result.chosen], "why": result.why,
    }


def _convert_all(variants: list[_Variant], opts: ConvertOptions, samples: Samples, progress: Progress) -> None:
    """Every variant's bytes: one conversion per variant, or per quantization for shared files."""
    frames: dict[tuple[int, int], list[np.ndarray]] = {}

    def calibration(size: tuple[int, int], spec: InputSpec) -> list[np.ndarray]:
        if size not in frames:  # the runtime's own preprocessing, at this size
            pre = Preprocessor(spec, np.float32)
            frames[size] = [pre(f)[0] for f in samples.calibration]
        return frames[size]

    for v in variants:
        if v.shares is not None:
            continue
        cal = calibration(v.size, v.source.input)
        sharers = [u for u in variants if u.shares is v]
        if sharers:
            progress.step(f"converting {v.name} with its input size free, for {', '.join(u.name for u in sharers)} too")
            # int8 ranges from the calibration frames spread over every size the file will run at
            # (frame i at size i mod k): every size seen, for what calibrating one size costs
            by_size = [cal, *(calibration(u.size, u.source.input) for u in sharers)]
            every = [by_size[i % len(by_size)][i] for i in range(len(cal))]
            _convert_shared(v, opts, cal, every)
            for u in sharers:
                u.data = v.data
        else:
            progress.step(f"converting {v.name}")
            _convert_variant(v, opts, cal)


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
        if source.is_detector and source.head.anchors is None:
            # a YOLO head is recognised, and cut, at the export's own size
            source = replace(source, resized=None, any_size=None,
                             fixed_size="a YOLO export runs at the size it was exported at (export again with imgsz=N)")
        plan = plan_sizes(source, opts.sizes)
        for size, why in plan.refused.items():
            progress.step(f"size {size[0]}x{size[1]} not built: {why}")
        variants = _variants(opts, plan)
        float_pre = Preprocessor(source.input, np.float32)

        progress.step("source model on the held-out samples", len(samples.held_out))
        references = []
        for i, frame in enumerate(samples.held_out):
            references.append(source.head.reference(frame) if source.is_detector else source.run(float_pre(frame)[0]))
            progress.update(i + 1)

        pruning = _prune(opts, source, samples, references, threads, Path(work), progress) if opts.prune else None
        for chosen in pruning.chosen if pruning is not None else []:
            # a quantization measured only is measured only for the pruned networks too
            variants += [_Variant(f"{chosen.name}-{VARIANT_NAMES[m]}", m, False, chosen.source, compressed=chosen.kind,
                                  measure_only=VARIANT_NAMES[m] in opts.measure_only)
                         for m in dict.fromkeys(opts.quantize)]

        _convert_all(variants, opts, samples, progress)
        reference_size = next((len(v.data) for v in variants
                               if v.mode == "none" and not v.postprocess and not v.sized and not v.compressed), None)
        if reference_size is None:
            progress.step("converting float32 (the size reference)")
            reference_size = len(quantize.convert(_function(source), source.trackable, "none", source=source.path))

        default = next(v.name for v in variants if not v.measure_only)
        for v in variants:
            v.own_file = MODEL if v.name == default else f"model-{v.name}.tflite"
        for v in variants:
            if v.shares is None:
                (folder / v.file).write_bytes(v.data)
        if source.is_detector and source.head.anchors is not None:
            np.save(folder / ANCHORS, source.head.anchors)
            for v in variants:
                name = v.source.head.params["anchors"]
                if v.sized and isinstance(name, str):  # anchors the board cannot generate itself
                    np.save(folder / name, v.source.head.anchors)
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
            "sizes": {"files": opts.size_files if any(v.shares for v in variants) else "separate", "asked": plan.report()},
            "converter": manifest["converter"],
            "wall_seconds": None,
        }
        if pruning is not None:
            report["pruning"] = _pruning_report(opts.prune, pruning, variants, rows)
        shipped = [v for v in variants if not v.measure_only]
        manifest["variants"] = [e for e, v in zip(manifest["variants"], variants) if not v.measure_only]
        for v in variants:
            if v.measure_only and all(u.file != v.file for u in shipped):
                (folder / v.file).unlink(missing_ok=True)
        write_manifest(folder, manifest)
        load_manifest(folder / MANIFEST)
        report["wall_seconds"] = round(time.monotonic() - started, 1)
        (folder / REPORT).write_text(json.dumps(report, indent=2) + "\n")
    progress.done(f"wrote {opts.output} in {report['wall_seconds']:.0f}s")
    return report
