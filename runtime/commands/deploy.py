"""`edgewatch deploy BUNDLE HOST...`: roll a bundle out to boards over ssh, in parallel, with rollback.

Each board checks the digest, switches `models/current`, reloads the daemon and waits until it
reports healthy on the new model, or switches back (see runtime/activation.py). Exits
`exitcodes.ROLLOUT_FAILED` if any host did not end on the new bundle.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
from pathlib import Path

from .. import exitcodes
from .arguments import number
from ..errors import CommandError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", type=Path, help="the bundle folder to roll out")
    parser.add_argument("hosts", nargs="*", metavar="HOST", help="ssh destinations ([user@]host or ssh_config aliases)")
    parser.add_argument("--parallel", type=number(integer=True, ge=1, le=1000), default=8, help="boards handled at once (default 8)")
    parser.add_argument("--timeout", type=number(gt=0, le=86_400), default=60.0, help="seconds each board waits for health before rolling back (default 60)")
    parser.add_argument("--ssh-config", type=Path, help="ssh client config file (ssh -F)")
    parser.add_argument("-o", "--ssh-option", action="append", default=[], metavar="OPTION", help="extra ssh -o option, repeatable")
    parser.add_argument("--sudo", action="store_true", help="run activate through `sudo -n` (login is not root)")
    parser.add_argument("--remote-edgewatch", default="edgewatch", help="the edgewatch command on the boards (default: edgewatch)")
    parser.add_argument("--state-dir", help="the daemon's state folder on the boards (default there: /var/lib/edgewatch)")
    parser.add_argument("--digest", action="store_true", help="print the bundle's digest and exit (for the Ansible playbook)")
    parser.add_argument("--json", action="store_true", help="one JSON object per host instead of the summary table")


def run(args: argparse.Namespace) -> int:
    from ..bundle import MANIFEST, load_manifest
    from ..bundle_digest import DigestError, bundle_digest
    from ..rollout.remote import SSH_DEFAULTS, Remote, deploy, summary

    try:
        digest = bundle_digest(args.bundle)
    except DigestError as exc:
        raise CommandError(str(exc)) from None
    load_manifest(args.bundle / MANIFEST)  # a bad manifest fails here, before any board is touched
    if args.digest:
        print(digest)
        return exitcodes.OK
    if not args.hosts:
        raise CommandError("give at least one HOST")
    bad = [h for h in args.hosts if h.startswith("-")]
    if bad:
        raise CommandError(f"bad host {bad[0]!r}: a host cannot start with '-'")
    if shutil.which("ssh") is None:
        raise CommandError("no ssh client on the PATH: install one (Debian: apt install openssh-client)")
    ssh = ["ssh", *SSH_DEFAULTS]
    if args.ssh_config:
        ssh += ["-F", str(args.ssh_config)]
    for option in args.ssh_option:
        ssh += ["-o", option]
    remote_cmd = shlex.split(args.remote_edgewatch)
    if not remote_cmd:
        raise CommandError("--remote-edgewatch: empty")
    remote = Remote(ssh=tuple(ssh), edgewatch=tuple((["sudo", "-n"] if args.sudo else []) + remote_cmd))
    results = deploy(remote, args.hosts, args.bundle, digest, parallel=args.parallel, timeout=args.timeout, state_dir=args.state_dir)
    if args.json:
        for r in results:
            print(json.dumps(r, sort_keys=True))
    else:
        print(summary(results))
    return exitcodes.OK if all(r["ok"] for r in results) else exitcodes.ROLLOUT_FAILED
