"""Ultralytics exports of a trained `.pt`, offline; run with the bench venv's Python (torch,
ultralytics, litert-torch), never imported by edgewatch.

    python converters/bench/ultralytics_export.py best.pt OUT --imgsz 320 --calibration FOLDER

Writes into OUT: `model.onnx` (`yolo export format=onnx opset=13 simplify=True`), `litert-float32.tflite`
(`format=tflite`: litert-torch, NCHW input), `litert-int8.tflite` (`format=tflite int8=True`, calibrated
on FOLDER's images through a local dataset yaml, since Ultralytics would otherwise download coco8),
`litert-int8-pixels.tflite` (the same without Ultralytics' in-graph coordinate normalisation: the
collapsed-scores case), and `exports.json` (what each command was and how long it took). Exports
already in OUT are kept. int8-pixels runs last: it patches Ultralytics in this process.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path


def dataset_yaml(images: Path, out: Path, names: dict) -> Path:
    """A dataset yaml Ultralytics accepts for int8 calibration, over local images only: it reads the
    `val` split's images (labels are not needed to calibrate)."""
    root = out / "calibration-dataset"
    (root / "images" / "val").mkdir(parents=True, exist_ok=True)
    for f in sorted(images.iterdir()):
        if f.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp"):
            shutil.copy(f, root / "images" / "val" / f.name)
    yaml = out / "calibration.yaml"
    lines = [f"path: {root}", "train: images/val", "val: images/val", "names:"] + [f"  {k}: {v}" for k, v in names.items()]
    yaml.write_text("\n".join(lines) + "\n")
    return yaml


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("pt", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--imgsz", type=int, required=True)
    p.add_argument("--calibration", type=Path, required=True, help="folder of images for int8 calibration")
    p.add_argument("--only", default="onnx,float32,int8,int8-pixels")
    args = p.parse_args()
    from ultralytics import YOLO
    import ultralytics

    args.out.mkdir(parents=True, exist_ok=True)
    record_path = args.out / "exports.json"
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    record["ultralytics"] = ultralytics.__version__
    work = args.out / "work"
    wanted = args.only.split(",")
    names = YOLO(str(args.pt)).names
    jobs = {
        "onnx": ("model.onnx", dict(format="onnx", imgsz=args.imgsz, opset=13, simplify=True)),
        "float32": ("litert-float32.tflite", dict(format="tflite", imgsz=args.imgsz)),
        "int8": ("litert-int8.tflite", dict(format="tflite", imgsz=args.imgsz, int8=True,
                                             data=str(dataset_yaml(args.calibration, args.out, names)))),
        # The same int8 export without the coordinate normalisation Ultralytics added to its LiteRT
        # path: boxes in pixels and scores share one int8 tensor, as in int8 exports before it.
        "int8-pixels": ("litert-int8-pixels.tflite", dict(format="tflite", imgsz=args.imgsz, int8=True,
                                                          data=str(args.out / "calibration.yaml"))),
    }
    for key in wanted:
        target, kwargs = jobs[key]
        if (args.out / target).is_file():
            continue
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        pt = work / args.pt.name
        shutil.copy(args.pt, pt)
        t0 = time.monotonic()
        if key == "int8-pixels":
            import ultralytics.utils.export.litert as litert

            litert._NormalizeCoords = lambda model, *args, **kwargs: model  # noqa: SLF001 - the collapsed-scores case on purpose
        produced = Path(YOLO(str(pt)).export(**kwargs))
        seconds = time.monotonic() - t0
        if produced.is_dir():  # some formats write a folder: take its .tflite
            candidates = sorted(produced.glob("*int8*.tflite" if key == "int8" else "*.tflite"))
            produced = candidates[0]
        shutil.copy(produced, args.out / target)
        record[key] = {"file": target, "command": f"yolo export model={args.pt.name} " + " ".join(f"{k}={v}" for k, v in kwargs.items()),
                       "produced": produced.name, "seconds": round(seconds, 1)}
        record_path.write_text(json.dumps(record, indent=1))
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
