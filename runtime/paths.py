"""Where the daemon keeps its state: the one rule, shared by the daemon and every command that reads it.

Layout of the state folder (docs/DESIGN.md): `events.db` (+ `-wal`, `-shm`), `snapshots/`,
`status.json`, `models/`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

EVENTS_DB = "events.db"
SNAPSHOTS = "snapshots"
STATUS = "status.json"
MODELS = "models"


def state_dir(environ: Mapping[str, str] | None = None, default: Path | None = None) -> Path:
    """`$STATE_DIRECTORY` (systemd's StateDirectory=), else `default` when given (the board's
    system folder, for commands acting on the service), else `$XDG_STATE_HOME/edgewatch`, else
    `~/.local/state/edgewatch`."""
    env = os.environ if environ is None else environ
    # systemd joins several StateDirectory= entries with ':'; ours is the first.
    systemd = env.get("STATE_DIRECTORY", "").split(":")[0]
    if systemd:
        return Path(systemd)
    if default is not None:
        return default
    xdg = env.get("XDG_STATE_HOME", "")
    # The XDG spec says a relative value is invalid and must be ignored.
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "edgewatch"
    home = env.get("HOME") or str(Path.home())
    return Path(home) / ".local" / "state" / "edgewatch"
