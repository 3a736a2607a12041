"""`edgewatch status [--json]`: the running daemon's health, model and figures, from status.json.

Exit 0 when healthy (the daemon says so and said it within 5 s), 1 otherwise: scripts and the
rollout's health check rely on it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from urllib.parse import urlsplit

from .. import exitcodes
from ..config import is_loopback


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--state-dir", help="the daemon's state folder (default: as `edgewatch run` finds it)")
    p.add_argument("--json", action="store_true", help="print status.json as it is, with `fresh` added")


_COSTS = {"board": "this board's own measurements", "bundle": "the bundle's figures (the converter's machine)",
          "rank": "quantization and input size (no figures)"}


def _storage(status: dict) -> str:
    """`, disk full` (or another write failure) while the event log cannot write: detection goes on."""
    storage = status.get("storage")
    if not storage or storage == "ok":
        return ""
    if str(storage).startswith("disk full"):
        return ", disk full (events are dropped until space returns)"
    if str(storage).startswith("low disk space"):
        return f", {storage}"
    return f", event log failing: {storage}"


def _age(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def _page(web: object) -> str:
    if not isinstance(web, dict) or not isinstance(web.get("url"), str):
        return "off (or not listening: see the daemon's log)"
    url = urlsplit(web["url"])
    note = f", {web.get('viewers', 0)} watching the live view" if web.get("viewers") else ""
    if url.hostname and is_loopback(url.hostname):
        # Loopback only: from another machine the way in is an ssh tunnel to this one.
        host = f"[{url.hostname}]" if ":" in url.hostname else url.hostname
        return f"{web['url']}{note} (from a laptop: ssh -L {url.port}:{host}:{url.port} THIS-BOARD, then http://localhost:{url.port}/)"
    return f"{web['url']}{note}" + (" (token required)" if web.get("token") else "")


def run(args: argparse.Namespace) -> int:
    from ..errors import CommandError
    from .. import paths
    from .. import status_file

    path = status_file.location(paths.state_dir(args.state_dir))
    try:
        paths.require_readable(path)
        status = status_file.read(path)
    except PermissionError as exc:
        raise CommandError(str(exc), exitcodes.FAILURE) from None
    except FileNotFoundError:
        raise CommandError(f"{path}: no status: the daemon has not run with this state folder", exitcodes.FAILURE) from None
    except ValueError as exc:
        raise CommandError(f"{path}: unreadable status ({exc})", exitcodes.FAILURE) from None
    now = time.time()
    healthy = status_file.is_healthy(status, now)
    fresh = status_file.is_fresh(status, now)
    updated = status.get("updated") if isinstance(status.get("updated"), (int, float)) else 0
    code = exitcodes.OK if healthy else exitcodes.FAILURE
    if args.json:
        return _print(json.dumps({**status, "fresh": fresh, "healthy_now": healthy}), code)
    model = status.get("model") or {}
    frames = status.get("frames") or {}
    events = status.get("events") or {}
    source = status.get("source") or {}
    age = status.get("frame_age_ms") or {}
    stale = "" if fresh else f" (status is {_age(now - updated)} old: not running?)"
    lines = [
        f"state:   {status.get('state')}{_storage(status)}{'' if healthy else ', NOT healthy'}{stale}",
        f"pid:     {status.get('pid')}, up {_age(updated - (status.get('started') or updated))}",
        f"model:   {model.get('name')} ({model.get('variant')}), sha256 {str(model.get('sha256'))[:12]}, {model.get('path')}",
        f"camera:  {source.get('name')} {source.get('state')} ({source.get('describe')}), losses {source.get('losses')}",
        f"rate:    {status.get('fps')} fps, invoke {status.get('invoke_ms')} ms, frame age p50 {age.get('p50')} ms p95 {age.get('p95')} ms",
        f"frames:  {frames.get('captured')} captured, {frames.get('inferred')} inferred, {frames.get('dropped')} dropped, {frames.get('errors')} errors",
        f"events:  {events.get('written')} written, {events.get('dropped')} dropped, {events.get('open')} open",
        f"motion:  {status_file.motion_text(status.get('motion'))}",
    ]
    ctl = (status.get("budget") or {}).get("controller") or {}
    if ctl.get("ladder"):
        lines.append(f"ladder:  {' > '.join(ctl['ladder'])}; at step {ctl.get('level')}; "
                     f"ordered by {_COSTS.get(ctl.get('costs'), ctl.get('costs'))}")
    survey = status.get("survey")
    if survey:
        chosen = survey.get("threads") or {}
        lines.append(f"survey:  {survey.get('state')}" + (f"; {chosen['chosen']} thread(s): {chosen['why']}" if chosen else ""))
    if status.get("budget"):
        lines.append(f"budget:  {json.dumps(status['budget'])}")
    lines.append(f"page:    {_page(status.get('web'))}")
    if status.get("last_error"):
        lines.append(f"error:   {status['last_error']}")
    return _print("\n".join(lines), code)


def _print(text: str, code: int) -> int:
    """The exit code says the daemon's health, also when a reader closes the pipe early (`| head -1`)."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        # Python flushes stdout again at exit: point it at /dev/null so that says nothing either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return code
