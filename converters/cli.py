"""`edgewatch convert SOURCE -o BUNDLE --calibration PATH`: a trained model in, a measured bundle out.

Runs headless (over ssh, under nohup, in CI): progress is a bar on a terminal and plain periodic
lines otherwise; the bundle appears at BUNDLE only when complete (see staging.py).

Exit codes (runtime/exitcodes.py):
  0  OK                 the bundle is written and every variant passed --min-fidelity
  2  BAD_INPUT          unreadable model, unsupported model type, missing calibration folder or
                        video, bad option; one line on stderr names the file and the cause
  3  CONVERSION_FAILED  the model was read but could not be converted (e.g. an op with no builtin
                        TFLite kernel); one line names the file, the mode and the op(s)
  4  FIDELITY_GATE      a variant scored below --min-fidelity; the bundle IS written, so it can be
                        inspected (`edgewatch report BUNDLE`)
  130 INTERRUPTED       Ctrl-C, SIGTERM or SIGHUP: nothing is written, an existing bundle is kept
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from runtime import exitcodes
from runtime.errors import CommandError
from runtime.preprocess import COLORS, INTERPOLATIONS, RESIZES, InputSpec


def _list(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(p) for p in _list(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(p) for p in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive size, got {text!r}")
    return w, h


def _sizes(text: str) -> list[tuple[int, int]]:
    from .sizes import parse_size

    try:
        return [parse_size(p) for p in _list(text)]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .quantize import IO_TYPES, MODES
    from .yolo.head import DECODERS
    from .sizes import SIZE_FILES

    parser.epilog = __doc__.split("\n\n", 2)[2]
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("source", type=Path, help="model: .pb (TF OD API SSD or frozen graph), SavedModel folder, .keras, .h5, .onnx")
    parser.add_argument("-o", "--output", type=Path, required=True, help="bundle folder to write (replaced only when complete)")
    parser.add_argument("--calibration", type=Path, required=True, help="folder of images or a video: calibration and held-out frames")
    parser.add_argument("--quantize", type=_list, default=["int8"], help=f"comma list of {', '.join(MODES)} (default int8); the first is the bundle's default")
    parser.add_argument("--io-type", choices=IO_TYPES, default="uint8", help="int8 variants: input/output type (default uint8)")
    parser.add_argument("--samples", type=int, default=100, help="calibration samples (default 100)")
    parser.add_argument("--held-out", type=int, default=40, help="held-out samples for the report (default 40)")
    parser.add_argument("--postprocess", type=_list, default=[], metavar="MODES",
                        help="detectors: also build these modes with TFLite_Detection_PostProcess appended")
    parser.add_argument("--measure-only", type=_list, default=[], metavar="VARIANTS",
                        help="variant names (e.g. float32) to measure and report but not ship in the bundle")
    parser.add_argument("--sizes", type=_sizes, default=[], metavar="W[xH],...",
                        help="also build these input sizes (e.g. 300,256,224,192,160), each in every --quantize mode; "
                             "the model's own size is always built; a size that cannot be made is reported with why")
    parser.add_argument("--size-files", choices=SIZE_FILES, default="shared",
                        help="shared (default): one file per quantization, its input size free, serves every size; "
                             "separate: a file per size, int8 calibrated at that size")
    parser.add_argument("--threads", type=int, default=None, help="threads for the latency measurement (default: all cores)")
    parser.add_argument("--runs", type=int, default=20, help="timed invokes per variant (default 20)")
    parser.add_argument("--name", help="bundle name (default: the folder name)")
    parser.add_argument("--labels", type=Path, help="labels file, one per line, in class order")
    parser.add_argument("--inputs", type=_list, help="frozen graph: the input tensor name")
    parser.add_argument("--outputs", type=_list, help="frozen graph: output tensor names")
    d = parser.add_argument_group("detector (YOLO heads are recognised by themselves; these say what the model cannot)")
    d.add_argument("--decoder", choices=DECODERS, help="the head's layout when its shape is ambiguous, or raw for a model that is not a detector")
    d.add_argument("--iou", type=float, help="NMS IoU threshold (default: the source's own; Ultralytics 0.7)")
    d.add_argument("--score", type=float, dest="score_threshold", help="score threshold (default: the source's own; Ultralytics 0.25)")
    g = parser.add_argument_group("input (models whose file does not record their preprocessing)")
    g.add_argument("--input-size", type=_size, help="WIDTHxHEIGHT when the model's input size is not fixed")
    g.add_argument("--color", choices=COLORS[:2], default="rgb")
    g.add_argument("--resize", choices=RESIZES, help="default: letterbox for a YOLO model, stretch otherwise")
    g.add_argument("--interpolation", choices=INTERPOLATIONS, default="linear")
    g.add_argument("--range", type=_floats, metavar="LO,HI", help="pixels 0..255 scaled linearly to LO..HI (default 0,1)")
    g.add_argument("--mean", type=_floats, metavar="M[,M,M]", help="instead of --range: (pixel - mean) / std")
    g.add_argument("--std", type=_floats, metavar="S[,S,S]")
    c = parser.add_argument_group("pruning and distillation (Conv2D kernels; the first, 3-channel layer and depthwise kernels stay dense)")
    c.add_argument("--prune", action="store_true",
                   help="sweep pruning methods and sparsities, distil each point from the source on the calibration frames, and "
                        "ship the sparsest points that keep --min-fidelity (default 0.95) as pruned<S>-<quant> (zeros: a smaller "
                        "file) and channels<S>-<quant> (narrower: a faster network) variants")
    c.add_argument("--prune-methods", type=_list, default=None, metavar="M,...",
                   help="of global, layer, random (weights zeroed) and channel (expanded channels removed); default all four")
    c.add_argument("--sparsities", type=_floats, default=None, metavar="S,...",
                   help="fractions of the kernels' weights zeroed, or of each block's channels removed (default 0.3,0.5,0.7,0.8,0.9)")
    c.add_argument("--distill-steps", type=int, help="distillation steps per point, 4 frames each (default 100; 0: prune only)")
    c.add_argument("--distill-seconds", type=float, help="distillation time limit per point")
    o = parser.add_argument_group("report")
    o.add_argument("--json", action="store_true", help="print the report as JSON on stdout (instead of the table)")
    o.add_argument("--min-fidelity", type=float,
                   help="exit 4 when a variant's fidelity (mAP@0.5 or cosine) is below this; with --prune, also the pruned "
                        "variants' threshold (those below it are left out of the bundle and do not cause exit 4)")
    o.add_argument("--plot", type=Path, metavar="PNG", help="draw fidelity against latency, file size and memory, with the frontier")
    o.add_argument("--quiet", action="store_true", help="no progress on stderr")


def _input_options(args: argparse.Namespace):
    from .sources import InputOptions

    if args.range and (args.mean or args.std):
        raise CommandError("give either --range or --mean/--std, not both")
    if args.range:
        if len(args.range) != 2 or args.range[0] == args.range[1]:
            raise CommandError(f"--range: expected two different numbers LO,HI, got {args.range}")
        m, s = InputSpec.range_to_mean_std(*args.range)
        mean, std = (m,) * 3, (s,) * 3
    elif args.mean or args.std:
        if not (args.mean and args.std):
            raise CommandError("--mean and --std go together")
        mean, std = (args.mean * 3)[:3] if len(args.mean) == 1 else args.mean, (args.std * 3)[:3] if len(args.std) == 1 else args.std
        if len(mean) != 3 or len(std) != 3 or 0 in std:
            raise CommandError(f"--mean/--std: expected 1 or 3 values each and no zero std, got {args.mean} / {args.std}")
    else:
        mean, std = (0.0,) * 3, (255.0,) * 3
    return InputOptions(args.input_size, args.color, args.resize, args.interpolation, tuple(mean), tuple(std))


def _labels(path: Path | None) -> list[str]:
    if path is None:
        return []
    from runtime.bundle import BundleError, read_labels

    try:
        return read_labels(path)
    except BundleError as exc:
        raise CommandError(str(exc)) from None


def _prune_options(args: argparse.Namespace):
    from .compress.sweep import METHODS, MIN_FIDELITY, SPARSITIES, PruneOptions

    given = [f for f, v in (("--prune-methods", args.prune_methods), ("--sparsities", args.sparsities),
                            ("--distill-steps", args.distill_steps), ("--distill-seconds", args.distill_seconds)) if v is not None]
    if not args.prune:
        if given:
            raise CommandError(f"{given[0]} needs --prune")
        return None
    methods = args.prune_methods or list(METHODS)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise CommandError(f"--prune-methods: {unknown[0]!r} is not one of {', '.join(METHODS)}")
    sparsities = list(args.sparsities or SPARSITIES)
    bad = [s for s in sparsities if not 0 < s < 1]
    if bad:
        raise CommandError(f"--sparsities: {bad[0]} is not between 0 and 1 (exclusive)")
    steps = 100 if args.distill_steps is None else args.distill_steps
    if steps < 0:
        raise CommandError(f"--distill-steps: must be at least 0, got {steps}")
    if args.distill_seconds is not None and args.distill_seconds <= 0:
        raise CommandError(f"--distill-seconds: must be positive, got {args.distill_seconds:g}")
    return PruneOptions(list(dict.fromkeys(methods)), sorted(set(sparsities)), steps, args.distill_seconds,
                        args.min_fidelity if args.min_fidelity is not None else MIN_FIDELITY,
                        methods_asked=args.prune_methods is not None)


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ chatter would bury the progress lines
    from .errors import ConversionError, SourceError
    from .conversion import ConvertOptions, convert
    from .progress import Progress
    from .report import below, table
    from .staging import Interrupted

    from .yolo.head import HeadOptions

    if args.samples < 1 or args.held_out < 1 or args.runs < 1 or (args.threads is not None and args.threads < 1):
        raise CommandError("--samples, --held-out, --runs and --threads must be at least 1")
    for flag, value in (("--iou", args.iou), ("--score", args.score_threshold)):
        if value is not None and not 0 < value < 1:
            raise CommandError(f"{flag}: must be between 0 and 1 (exclusive), got {value}")
    opts = ConvertOptions(
        prune=_prune_options(args),
        source=args.source, output=args.output, calibration=args.calibration, quantize=args.quantize or ["int8"],
        io_type=args.io_type, samples=args.samples, held_out=args.held_out, postprocess=args.postprocess,
        measure_only=args.measure_only, threads=args.threads, runs=args.runs, name=args.name,
        labels=_labels(args.labels), input=_input_options(args), inputs=args.inputs, outputs=args.outputs,
        head=HeadOptions(args.decoder, args.iou, args.score_threshold),
        sizes=args.sizes, size_files=args.size_files,
    )
    try:
        report = convert(opts, Progress(enabled=not args.quiet))
    except SourceError as exc:
        raise CommandError(str(exc), exitcodes.BAD_INPUT) from None
    except ConversionError as exc:
        raise CommandError(str(exc), exitcodes.CONVERSION_FAILED) from None
    except Interrupted as exc:
        raise CommandError(f"{exc}; nothing written, {args.output} unchanged", exitcodes.INTERRUPTED) from None
    if args.plot:
        from .plot import plot

        plot(report, args.plot)
    print(json.dumps(report, indent=2) if args.json else table(report))
    if args.min_fidelity is not None:
        failing = below(report, args.min_fidelity)
        if failing:
            print(f"edgewatch convert: fidelity below {args.min_fidelity}: {', '.join(failing)} (bundle written: {args.output})", file=sys.stderr)
            return exitcodes.FIDELITY_GATE
    return exitcodes.OK
