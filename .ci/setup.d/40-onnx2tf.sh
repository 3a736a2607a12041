#!/usr/bin/env bash
# onnx2tf in its own venv (it pins TensorFlow 2.19 and numpy 1.26; the project runs TF 2.21 and
# numpy 2): converters/onnx/env.py owns the location and the pins. Idempotent: a ready venv with
# the same pins is kept. About a gigabyte of wheels the first time.
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 -m converters.onnx.env --create
