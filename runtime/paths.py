"""Where things are: the one rule for the state folder and the config file, used by the daemon and
by every command that reads what it writes, and the embedded default's files.

State folder, first that applies:

1. `--state-dir` (an explicit folder always wins);
2. `$STATE_DIRECTORY`: the service itself (systemd's StateDirectory=);
3. `/var/lib/edgewatch` when it exists: a board with the service installed by deploy/install.sh,
   whose commands (run over ssh by the board's user) must read what the service writes;
4. `$XDG_STATE_HOME/edgewatch`, else `~/.local/state/edgewatch`: a user with no service.

Config file: `--config`, else `$CONFIGURATION_DIRECTORY/config.toml`, else
`/etc/edgewatch/config.toml` when it exists, else none (the embedded default).

Layout of the state folder: `events.db` (+ `-wal`, `-shm`), `snapshots/`, `status.json`, `models/`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

EVENTS_DB = "events.db"
SNAPSHOTS = "snapshots"
STATUS = "status.json"
MODELS = "models"

SERVICE_STATE_DIR = Path("/var/lib/edgewatch")
SERVICE_CONFIG = Path("/etc/edgewatch/config.toml")
# The group install.sh gives read access to the service's state; the fix named when it is missing.
SERVICE_GROUP = "edgewatch"

ASSETS = Path(__file__).resolve().parent / "assets"
BUNDLED_MODEL = ASSETS / "person-ssdlite"
BUNDLED_VIDEO = ASSETS / "vtest.avi"


def _first(value: str) -> str:
    # systemd joins several StateDirectory=/ConfigurationDirectory= entries with ':'; ours is the first.
    return value.split(":")[0]


def state_dir(explicit: str | Path | None = None, environ: Mapping[str, str] | None = None,
              service_dir: Path = SERVICE_STATE_DIR) -> Path:
    """The state folder, by the rule in this module's docstring."""
    if explicit:
        return Path(explicit)
    env = os.environ if environ is None else environ
    systemd = _first(env.get("STATE_DIRECTORY", ""))
    if systemd:
        return Path(systemd)
    if service_dir.exists():
        return service_dir
    xdg = env.get("XDG_STATE_HOME", "")
    # The XDG spec says a relative value is invalid and must be ignored.
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "edgewatch"
    home = env.get("HOME") or str(Path.home())
    return Path(home) / ".local" / "state" / "edgewatch"


def config_path(explicit: str | Path | None = None, environ: Mapping[str, str] | None = None,
                service_config: Path = SERVICE_CONFIG) -> Path | None:
    """The config file by the rule in this module's docstring; None: the embedded default."""
    if explicit:
        return Path(explicit)
    env = os.environ if environ is None else environ
    systemd = _first(env.get("CONFIGURATION_DIRECTORY", ""))
    if systemd:
        return Path(systemd) / "config.toml"
    if service_config.is_file():
        return service_config
    return None


def permission_hint(path: Path) -> str:
    """What to do when `path` in the state folder cannot be read: the one-line fix."""
    if Path(path).is_relative_to(SERVICE_STATE_DIR):
        return (f"the service's state is readable by group {SERVICE_GROUP}: "
                f"sudo usermod -aG {SERVICE_GROUP} $USER, then log in again (or use sudo)")
    return "check the folder's owner and mode, or give another --state-dir"


def require_readable(path: Path) -> None:
    """Raise PermissionError, one line naming `path` and the fix, when it exists but this user may
    not read it (a missing file is for the caller to report, in its own words)."""
    path = Path(path)
    try:
        path.stat()
    except FileNotFoundError:
        return
    except PermissionError:
        raise PermissionError(f"{path}: permission denied; {permission_hint(path)}") from None
    if not os.access(path, os.R_OK):
        raise PermissionError(f"{path}: permission denied; {permission_hint(path)}")
