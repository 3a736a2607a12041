"""`edgewatch run`: the daemon. With no config it runs the embedded default (the bundled person
model on the bundled video, looped) and keeps its events in the per-user state folder."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from pathlib import Path

from .. import exitcodes
from .arguments import number


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="TOML config (default: $CONFIGURATION_DIRECTORY/config.toml, else "
                                    "/etc/edgewatch/config.toml if present, else the embedded default)")
    p.add_argument("--state-dir", help="events, snapshots and status.json (default: $STATE_DIRECTORY, else "
                                       "$XDG_STATE_HOME/edgewatch, else ~/.local/state/edgewatch)")
    p.add_argument("--source", help="override camera.source: a V4L2 index or /dev path, a URL, a video file, or picamera2")
    p.add_argument("--model", help="override model.path: a bundle folder, model.json or .tflite")
    p.add_argument("--as-fast-as-possible", action="store_true",
                   help="video files: do not pace playback at the file's frame rate")
    p.add_argument("--duration", type=number(gt=0, le=10 * 365 * 86_400), metavar="SECONDS", help="stop cleanly after this many seconds")
    p.add_argument("--web-port", type=number(integer=True, ge=0, le=65535), metavar="PORT",
                   help="override web.port (0: any free port; `edgewatch status` says which)")


def _overrides(args: argparse.Namespace):
    from ..config import resolve_source

    def apply(config):
        camera, model = config.camera, config.model
        if args.source is not None:
            camera = dataclasses.replace(camera, source=resolve_source(args.source, Path.cwd()))
        if args.as_fast_as_possible:
            camera = dataclasses.replace(camera, as_fast_as_possible=True)
        if args.model is not None:
            model = dataclasses.replace(model, path=Path(args.model).resolve())
        web = config.web if args.web_port is None else dataclasses.replace(config.web, port=args.web_port)
        return dataclasses.replace(config, camera=camera, model=model, web=web)

    return apply


def run(args: argparse.Namespace) -> int:
    from ..errors import CommandError
    from ..decoders import DecoderError
    from ..events import EventLogError
    from .. import paths
    from ..service.daemon import Daemon
    from ..state_lock import StateLocked

    if args.verbose == 0:
        # The daemon's own lifecycle (start, losses, recoveries, reloads) belongs in the journal.
        logging.getLogger("edgewatch").setLevel(logging.INFO)
    daemon = Daemon(paths.config_path(args.config), paths.state_dir(args.state_dir),
                    duration=args.duration, overrides=_overrides(args))
    try:
        code = daemon.run()
        if daemon.left_busy:
            # An inference still runs in LiteRT: tearing the interpreter down under it at exit
            # aborts the process (std::terminate). Everything is written; leave now.
            logging.shutdown()
            sys.stderr.flush()
            os._exit(code)
        return code
    except (DecoderError, StateLocked) as exc:  # a bundle to fix, a folder another daemon holds
        raise CommandError(str(exc)) from None
    except (EventLogError, OSError) as exc:
        raise CommandError(f"cannot start: {exc}", exitcodes.FAILURE) from None
