"""status.json: the running daemon's health and figures, replaced atomically about once a second
(docs/DESIGN.md). `edgewatch status`, rollout's health check and people read it.

Readers always read `status.json` in the state folder. Under systemd the daemon writes it in its
runtime folder instead ($RUNTIME_DIRECTORY, a tmpfs), and `status.json` in the state folder is a
link to it: a full SD card must not make a running daemon look dead.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import paths as state_paths
from .atomic import replace_bytes

log = logging.getLogger("edgewatch.status")

STALE_S = 5.0  # a status older than this means the daemon is stuck or gone


def location(state_dir: Path) -> Path:
    """Where readers find the status: in the state folder (a link, when it is written elsewhere)."""
    return Path(state_dir) / state_paths.STATUS


def publish_location(state_dir: Path, environ: Mapping[str, str] | None = None) -> Path:
    """Where the daemon writes its status. With a runtime folder (systemd's RuntimeDirectory=) it
    is there, and `location(state_dir)` is made a link to it; else it is `location(state_dir)`."""
    env = os.environ if environ is None else environ
    runtime = env.get("RUNTIME_DIRECTORY", "").split(":")[0]
    reader_path = location(state_dir)
    if not runtime:
        return reader_path
    target = Path(runtime) / state_paths.STATUS
    if not (reader_path.is_symlink() and os.readlink(reader_path) == str(target)):
        temp = reader_path.with_name(f".{reader_path.name}.{os.getpid()}.link")
        try:
            temp.unlink(missing_ok=True)
            temp.symlink_to(target)
            os.replace(temp, reader_path)
        except OSError as exc:  # a full or read-only card: the status is still written, just not found
            log.warning("cannot link %s to %s (%s): `edgewatch status` will not find the status", reader_path, target, exc)
    return target


def write(path: Path, status: dict[str, Any]) -> None:
    """Replace the file whole (temp + rename): a reader sees the old status or the new, never half.
    No fsync: it is rewritten every second and worthless after a power cut anyway."""
    replace_bytes(path, (json.dumps(status, indent=1) + "\n").encode())


def read(path: Path) -> dict[str, Any]:
    """Raises FileNotFoundError, or ValueError for a file that is not a status object."""
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a status object")
    return data


def is_fresh(status: dict[str, Any] | None, now: float | None = None) -> bool:
    """The daemon is alive and reporting (healthy or not): it wrote within the last STALE_S seconds."""
    now = time.time() if now is None else now
    updated = (status or {}).get("updated")
    return isinstance(updated, (int, float)) and now - updated <= STALE_S


def is_healthy(status: dict[str, Any], now: float | None = None) -> bool:
    """Healthy = the daemon says so, and said it within the last STALE_S seconds."""
    return bool(status.get("healthy")) and is_fresh(status, now)


def motion_text(motion: dict[str, Any] | None) -> str:
    """status.json's `motion` block as one phrase for people (`edgewatch status`, `edgewatch monitor`)."""
    if not motion:
        return "-"
    if not motion.get("enabled"):
        return "gate off: the model sees every frame"

    def share(key: str) -> str:
        value = motion.get(key)
        return "-" if not isinstance(value, (int, float)) else f"{value:.1%}"

    reasons = motion.get("sent_by_reason") or {}
    why = ", ".join(f"{k} {v}" for k, v in reasons.items() if v)
    return (f"motion in {share('motion_share')} of frames, model on {share('inference_duty')} "
            f"(last {motion.get('window_s', 0):g} s; sent for {why or 'nothing yet'}), {motion.get('state') or 'starting'}"
            + (f", relearned {motion['relearned']}x" if motion.get("relearned") else "")
            + (f", {motion['regions']} frames as crops" if motion.get("regions") else ""))
