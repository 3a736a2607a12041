"""`load_onnx`: an ONNX file in, an NHWC TensorFlow SavedModel out, through onnx2tf in its venv.

The converter core quantizes the SavedModel with its own TFLiteConverter path; this module only
gets it there. onnx2tf runs as a subprocess (argument list, no shell, no TTY, stdin closed) in
`workdir`, on a copy of the ONNX file because onnxsim rewrites its input in place, with its sample
images already in place so nothing is downloaded, and with every proxy pointed at a closed local
port so that any download it still tried would fail at once instead of reaching the network.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from .env import isolated_environ, require_env
from .errors import OnnxConversionError
from .sample_data import write_sample_data

WORKER = Path(__file__).with_name("worker.py")
SAVED_MODEL = "saved_model"
LOG = "onnx2tf.log"
# Port 9 (discard) on loopback: nothing listens, so a request fails immediately. Both spellings,
# since urllib (and so requests) lets the lower-case one win.
_NO_NETWORK = {
    name: value
    for key, value in (("http_proxy", "http://127.0.0.1:9"), ("https_proxy", "http://127.0.0.1:9"),
                       ("all_proxy", "http://127.0.0.1:9"), ("no_proxy", ""))
    for name in (key, key.upper())
}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _log_lines(log: Path) -> list[str]:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return []
    return [line for line in (_ANSI.sub("", raw).strip() for raw in text.splitlines()) if line]


def _failure(worker_message: str, log: Path) -> str:
    """One line: the worker's exception, else onnx2tf's first `ERROR:` line, else the log's last
    line (a crash); plus the ONNX node onnx2tf was converting when it failed, when it says."""
    lines = _log_lines(log)
    errors = [line.removeprefix("ERROR:").strip() for line in lines if line.startswith("ERROR:")]
    node = next((e.removeprefix("onnx_op_name:").strip() for e in errors if e.startswith("onnx_op_name:")), None)
    cause = worker_message or (errors[0] if errors else lines[-1] if lines else "no output")
    return f"onnx2tf failed{f' at node {node}' if node else ''}: {cause} (log: {log})"


def onnx_description(workdir: Path) -> dict:
    """After `load_onnx` succeeded in `workdir`: the ONNX model's metadata properties and its graph's
    input and output shapes, as the worker read them ({} when it did not say)."""
    try:
        result = json.loads((Path(workdir) / "onnx2tf-result.json").read_text())
    except (OSError, ValueError):
        return {}
    return {k: result[k] for k in ("metadata", "inputs", "outputs") if k in result}


def load_onnx(onnx_path: Path, workdir: Path) -> Path:
    """Converts `onnx_path` with onnx2tf under `workdir`; returns the SavedModel folder (NHWC inputs).

    Raises OnnxConversionError (one line, naming the file) for an unreadable model, an op onnx2tf
    cannot convert, a failed conversion, or a missing onnx2tf environment.
    """
    onnx_path = Path(onnx_path)
    workdir = Path(workdir)
    if not onnx_path.is_file():
        raise OnnxConversionError(f"{onnx_path}: no such file", "input")
    env = require_env()
    workdir.mkdir(parents=True, exist_ok=True)
    model_copy = workdir / "model.onnx"
    out_dir = workdir / SAVED_MODEL
    result_path = workdir / "onnx2tf-result.json"
    log_path = workdir / LOG
    try:
        shutil.copyfile(onnx_path, model_copy)
    except OSError as exc:
        raise OnnxConversionError(f"{onnx_path}: cannot read: {exc.strerror or exc}", "input") from exc
    shutil.rmtree(out_dir, ignore_errors=True)
    result_path.unlink(missing_ok=True)
    write_sample_data(workdir)

    with log_path.open("wb") as log:
        subprocess.run(
            [str(env.python), str(WORKER), str(model_copy), str(out_dir), str(result_path)],
            cwd=workdir,
            env={**isolated_environ(env), **_NO_NETWORK, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    try:
        result = json.loads(result_path.read_text())
    except (OSError, ValueError):
        result = {"ok": False, "cause": "conversion", "message": ""}
    # The result file is written before the worker exits: trust it over an exit code that a
    # crash in TensorFlow's teardown could spoil.
    if result.get("ok"):
        return out_dir
    cause = {"unreadable": "input", "unsupported_op": "unsupported_op"}.get(result.get("cause"), "conversion")
    message = result.get("message", "")
    if cause == "conversion":
        message = _failure(message, log_path)
    raise OnnxConversionError(f"{onnx_path}: {message}", cause)
