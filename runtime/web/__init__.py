"""The daemon's local page: a live view, the events with their snapshots, the state at a glance,
a JSON API and /metrics; read-only, on loopback unless the config says otherwise.

    from runtime.web.routes import DaemonView
    from runtime.web.server import WebServer
    server = WebServer(DaemonView(status=..., health=pipeline.health, feed=pipeline.live, events_db=..., snapshots_dir=...),
                       host="127.0.0.1", port=8090)
    server.start(); ...; server.stop()

Modules: server (the bounded HTTP server, access checks), routes (the path table), events_api,
live (the live view's JPEGs), metrics (/metrics), history (the plots' last hour), access (token,
loopback and Host rules), responses, static/ (the page: HTML, JS, CSS; no build step).
The package imports nothing here, so that `edgewatch status` can use `access` cheaply.
"""
