"""Run one conversion job from a job file: `python -m runtime.rollout.convert_job FILE`.

The ExecStart of `edgewatch-convert@NAME.service`, for `ssh host sudo systemctl start
edgewatch-convert@NAME`: systemd owns the process (it outlives the ssh session), the journal keeps
its log and `systemctl status` its exit status. The job file holds the arguments of `edgewatch
convert`, one per line, never a shell string: nothing in it is ever interpreted by a shell.
Blank lines and lines starting with `#` are skipped.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .. import exitcodes


def read_job(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    # Trailing blanks and a CR (a job file edited on Windows) would become part of an argument.
    lines = (line.rstrip() for line in text.splitlines())
    return [line for line in lines if line and not line.lstrip().startswith("#")]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m runtime.rollout.convert_job JOBFILE", file=sys.stderr)
        return exitcodes.BAD_INPUT
    path = Path(argv[0])
    try:
        args = read_job(path)
    except (OSError, UnicodeDecodeError) as exc:
        print(f"convert job: {path}: cannot read ({getattr(exc, 'strerror', None) or exc})", file=sys.stderr)
        return exitcodes.BAD_INPUT
    if not args:
        print(f"convert job: {path}: no arguments in the job file", file=sys.stderr)
        return exitcodes.BAD_INPUT
    command = [sys.executable, "-m", "runtime.cli", "convert", *args]
    print(f"convert job {path.stem}: edgewatch convert {' '.join(args)}", file=sys.stderr, flush=True)
    # exec, not a child: the unit's main process becomes the converter, its exit status the job's.
    os.execv(sys.executable, command)
    return exitcodes.FAILURE  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
