"""`edgewatch activate`: on a board, take a bundle, switch to it, wait for health, roll back on failure.

Run by `edgewatch deploy` over ssh (the bundle arrives as a tar stream on stdin, `-`) and by the
Ansible playbook (the bundle was copied to a folder first). Prints one JSON line with the result
on stdout for the caller; people read the message on stderr.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from .. import exitcodes
from .arguments import number
from ..errors import CommandError

def _digest(value: str) -> str:
    from ..bundle_digest import is_digest

    if not is_digest(value):
        raise argparse.ArgumentTypeError(f"not a sha256 hex digest: {value!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", nargs="?", help="bundle folder on this board, or - for a tar stream on stdin")
    parser.add_argument("--previous", action="store_true", help="switch back to the previous bundle (models/previous)")
    parser.add_argument("--recover", action="store_true",
                        help="before the daemon starts (the unit's ExecStartPre): undo an activation that never finished")
    parser.add_argument("--sha256", type=_digest, help="the bundle digest the sender computed; refused on mismatch")
    parser.add_argument("--timeout", type=number(gt=0, le=86_400), default=60.0, help="seconds to wait for the daemon to report healthy (default 60)")
    parser.add_argument("--stage-only", action="store_true", help="receive and check the bundle, switch nothing")
    parser.add_argument("--state-dir", type=Path, help="the daemon's state folder (default $STATE_DIRECTORY or /var/lib/edgewatch)")


def _emit(result: dict) -> None:
    try:
        print(json.dumps(result, sort_keys=True), flush=True)
    except BrokenPipeError:
        pass  # the ssh session is gone; the board's state is already final


def run(args: argparse.Namespace) -> int:
    from .. import activation
    from ..paths import state_dir

    if sum((args.bundle is not None, args.previous, args.recover)) != 1:
        raise CommandError("give one of: a bundle (folder or -), --previous, --recover")
    # A dropped ssh session must not stop us between the switch and the health check or rollback.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    paths = activation.BoardPaths(state_dir(args.state_dir))
    try:
        if args.recover:
            result = activation.recover(paths)
            _emit(result)
            if result["result"] == "recovered":
                print(f"edgewatch activate: an unfinished activation of {result['abandoned']} was undone: back on {result['bundle']}",
                      file=sys.stderr)
            return exitcodes.OK
        with activation.locked(paths):
            if args.previous:
                target = activation.link_target(paths.previous)
                if target is None or not target.is_dir():
                    raise CommandError(f"{paths.previous}: no previous bundle to switch back to", exitcodes.FAILURE)
            else:
                source = None if args.bundle == "-" else Path(args.bundle)
                target = activation.receive(paths, expected=args.sha256, folder=source, stream=sys.stdin.buffer if source is None else None)
            if args.stage_only:
                _emit({"result": "staged", "ok": True, "bundle": target.name})
                return exitcodes.OK
            result = activation.activate(paths, target, args.timeout)
    except activation.ActivationError as exc:
        _emit({"result": "refused", "ok": False, "error": str(exc)})
        raise CommandError(str(exc), exc.code) from None
    except OSError as exc:  # a full or read-only card: say so to `deploy`, which reads this line
        message = f"{exc.filename or paths.models}: {exc.strerror or exc}"
        _emit({"result": "failed", "ok": False, "error": message})
        raise CommandError(message, exitcodes.FAILURE) from None
    _emit(result)
    if result["ok"]:
        print(f"edgewatch activate: {result['result']}: {result['bundle'][:12]} healthy after {result['seconds']} s", file=sys.stderr)
        return exitcodes.OK
    print(f"edgewatch activate: {result['result']}: {result['error']}", file=sys.stderr)
    return exitcodes.ROLLOUT_FAILED
