"""Where the daemon finds its config and the embedded default (the state folder's rule is
runtime/paths.py, shared with every command that reads the state)."""

from __future__ import annotations

import os
from pathlib import Path

from .. import paths as state_paths

ASSETS = Path(__file__).resolve().parents[1] / "assets"
BUNDLED_MODEL = ASSETS / "person-ssdlite"
BUNDLED_VIDEO = ASSETS / "vtest.avi"
SYSTEM_CONFIG = Path("/etc/edgewatch/config.toml")


def state_dir(explicit: str | Path | None = None) -> Path:
    """`--state-dir` when given, else runtime.paths.state_dir()."""
    return Path(explicit) if explicit else state_paths.state_dir()


def config_path(explicit: str | Path | None = None) -> Path | None:
    """`--config`, else $CONFIGURATION_DIRECTORY/config.toml, else /etc/edgewatch/config.toml if
    present, else None: the embedded default."""
    if explicit:
        return Path(explicit)
    systemd = os.environ.get("CONFIGURATION_DIRECTORY", "").split(":")[0]
    if systemd:
        return Path(systemd) / "config.toml"
    if SYSTEM_CONFIG.is_file():
        return SYSTEM_CONFIG
    return None
