"""Writing a bundle folder so that a reader never sees half of one.

The bundle is built in a hidden temporary folder beside the target (same file system, so the final
rename is atomic). Only when it is complete does it take the target's place: swapped in one
`renameat2(RENAME_EXCHANGE)` where Linux offers it, else the old bundle is moved aside first and
removed after. A failure or an interruption (Ctrl-C, SIGTERM, SIGHUP when an ssh session drops)
removes the temporary folder and leaves any existing bundle exactly as it was.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from runtime.atomic import fsync_path, fsync_tree

from .errors import SourceError

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


class Interrupted(BaseException):
    """SIGTERM or SIGHUP arrived while the bundle was being built. A BaseException, as
    KeyboardInterrupt is, so no `except Exception` on the way turns it into a conversion failure."""


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths; False when the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return rc == 0


def check_replaceable(target: Path, marker: str) -> None:
    """Refuse to replace anything but a bundle (a folder holding `marker`) or an empty folder:
    `-o ~/projects` by mistake must not delete a folder of someone's work."""
    if not target.exists():
        return
    if not target.is_dir():
        raise SourceError(f"{target}: exists and is not a folder; not replacing it with a bundle")
    if not (target / marker).is_file() and any(target.iterdir()):
        raise SourceError(f"{target}: exists and is not a bundle (no {marker}); not replacing it")


def _replace(staging: Path, target: Path) -> None:
    fsync_tree(staging)
    # No signal may land between the renames: it could strand the old bundle and delete the new.
    blocked = {signal.SIGTERM, signal.SIGHUP, signal.SIGINT}
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        if not target.exists():
            staging.rename(target)
        elif _exchange(staging, target):
            shutil.rmtree(staging)  # now holds the old bundle
        else:
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            target.rename(old)
            try:
                staging.rename(target)
            except OSError:
                old.rename(target)  # put the old bundle back
                raise
            shutil.rmtree(old, ignore_errors=True)
        fsync_path(target.parent)  # the rename itself
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _raise_interrupted(signum, _frame):
    raise Interrupted(f"interrupted by {signal.Signals(signum).name}")


@contextmanager
def staged_folder(target: Path, marker: str) -> Iterator[Path]:
    """Yields an empty folder; on a clean exit it replaces `target`, otherwise it is removed.
    An existing `target` must be a bundle (holding `marker`) or empty."""
    target = Path(target).absolute()
    check_replaceable(target, marker)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)  # mkdtemp's 0700 would hide the bundle from the service's user
    # Not where the signal is ignored: under nohup a dropped ssh session must not end the run.
    previous = {s: signal.signal(s, _raise_interrupted) for s in (signal.SIGTERM, signal.SIGHUP)
                if signal.getsignal(s) is not signal.SIG_IGN}
    try:
        yield staging
        check_replaceable(target, marker)  # again: it may have changed during a long conversion
        _replace(staging, target)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        shutil.rmtree(staging, ignore_errors=True)
