"""onnx2tf's own virtual environment.

onnx2tf pins exact versions of everything it imports (TensorFlow 2.19, numpy 1.26, onnx 1.19,
opencv-python), which clash with the project's TensorFlow 2.21 and numpy 2, so it lives in a venv
of its own and runs as a subprocess (`converters.onnx.convert`). The venv is made once, by
`python -m converters.onnx.env --create` (CI: `.ci/setup.d/40-onnx2tf.sh`), never behind a
conversion's back: it downloads about a gigabyte.

Location: `$EDGEWATCH_ONNX2TF_VENV`, else `$XDG_CACHE_HOME/edgewatch/onnx2tf-venv`, else
`~/.cache/edgewatch/onnx2tf-venv`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import OnnxConversionError

ONNX2TF_VERSION = "1.29.24"
# onnx2tf's own metadata pins every dependency with ==, so this one line fixes the whole set.
REQUIREMENTS = (f"onnx2tf=={ONNX2TF_VERSION}",)
# Written last by `create`: a venv without it is a half-made one (an interrupted install).
STAMP = "edgewatch-onnx2tf.json"
CREATE_HINT = "create it with: python -m converters.onnx.env --create"


@dataclass(frozen=True)
class Onnx2tfEnv:
    root: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def stamp(self) -> Path:
        return self.root / STAMP


def venv_path() -> Path:
    explicit = os.environ.get("EDGEWATCH_ONNX2TF_VENV")
    if explicit:
        return Path(explicit).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "edgewatch" / "onnx2tf-venv"


def _stamp_matches(env: Onnx2tfEnv) -> bool:
    try:
        stamp = json.loads(env.stamp.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(stamp, dict) and stamp.get("requirements") == list(REQUIREMENTS)


def require_env() -> Onnx2tfEnv:
    """The ready venv, or a one-line OnnxConversionError saying how to make it."""
    env = Onnx2tfEnv(venv_path())
    if not env.python.exists():
        raise OnnxConversionError(f"onnx2tf environment {env.root} is missing: {CREATE_HINT}", "environment")
    if not _stamp_matches(env):
        raise OnnxConversionError(
            f"onnx2tf environment {env.root} is incomplete or not onnx2tf {ONNX2TF_VERSION}: {CREATE_HINT}",
            "environment",
        )
    return env


def isolated_environ(env: Onnx2tfEnv) -> dict[str, str]:
    """Environment for a process in the venv: none of this interpreter's packages leak in."""
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    environ["VIRTUAL_ENV"] = str(env.root)
    # onnx2tf calls its helpers (onnxsim) by name, so the venv's bin/ comes first on PATH.
    environ["PATH"] = os.pathsep.join([str(env.bin), environ.get("PATH", os.defpath)])
    environ["PYTHONNOUSERSITE"] = "1"
    return environ


def create(*, progress: bool) -> Onnx2tfEnv:
    """Make (or finish, or replace) the venv; a no-op when a matching one is already there."""
    env = Onnx2tfEnv(venv_path())
    if env.python.exists() and _stamp_matches(env):
        return env
    if env.root.exists() and any(env.root.iterdir()) and not (env.root / "pyvenv.cfg").exists():
        raise OnnxConversionError(f"{env.root}: exists and is not a virtual environment; refusing to overwrite it", "environment")
    env.root.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(env.root)], check=True, stdin=subprocess.DEVNULL)
    pip = [str(env.python), "-m", "pip", "install", "--no-input", *(() if progress else ("--progress-bar", "off"))]
    subprocess.run([*pip, *REQUIREMENTS], check=True, stdin=subprocess.DEVNULL, env=isolated_environ(env))
    versions = subprocess.run(
        [str(env.python), "-c", "import importlib.metadata as m, json; "
         "print(json.dumps({p: m.version(p) for p in ('onnx2tf', 'tensorflow', 'numpy', 'onnx', 'onnxruntime')}))"],
        check=True, stdin=subprocess.DEVNULL, env=isolated_environ(env), capture_output=True, text=True,
    )
    env.stamp.write_text(json.dumps({"requirements": list(REQUIREMENTS), "versions": json.loads(versions.stdout)}, indent=1))
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m converters.onnx.env", description=__doc__.split("\n\n")[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--create", action="store_true", help="make the venv if it is missing or stale (idempotent)")
    action.add_argument("--check", action="store_true", help="exit 0 if the venv is ready, 2 with the reason if not")
    args = parser.parse_args(argv)
    try:
        if args.create:
            started = time.monotonic()
            env = create(progress=sys.stderr.isatty())
            print(f"onnx2tf environment ready: {env.root} ({time.monotonic() - started:.1f} s)")
        else:
            env = require_env()
            print(f"onnx2tf environment ready: {env.root} {env.stamp.read_text()}")
    except OnnxConversionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as exc:
        print(f"error: creating the onnx2tf environment failed: {' '.join(map(str, exc.cmd))} exited {exc.returncode}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
