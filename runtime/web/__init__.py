"""The daemon's local page: a live view, the events with their snapshots, the state at a glance,
a JSON API and /metrics; read-only, on loopback unless the config says otherwise.

    server = WebServer(DaemonView(status=..., feed=pipeline.live, events_db=..., snapshots_dir=...),
                       host="127.0.0.1", port=8090)
    server.start(); ...; server.stop()
"""

from .routes import DaemonView
from .server import WebServer

__all__ = ["DaemonView", "WebServer"]
