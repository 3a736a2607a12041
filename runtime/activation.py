"""The board side of a rollout: receive a bundle, check it, switch `models/current`, reload the
daemon, wait until it reports healthy on the new model, and switch back if it does not.

Layout under the state folder (`/var/lib/edgewatch` on a board):

    models/<digest>/        one folder per bundle, named by its digest (runtime.bundle_digest)
    models/current  -> <digest>   what the daemon's config points at; replaced by rename, never edited
    models/previous -> <digest>   the last good bundle, for `edgewatch activate --previous`
    models/fallback -> <digest>   exists only while an activation is unfinished: if the board loses
                                  power or the activation is killed, `activate --recover` (the
                                  unit's ExecStartPre) switches back to it before the daemon starts
    staging/                partial copies; renamed into models/ only once their digest checks out

The daemon is reloaded with SIGHUP to the pid in its own status.json (what systemd's ExecReload does),
so the same code works under systemd and in a test's throwaway root.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import tarfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from . import exitcodes
from .atomic import fsync_path, fsync_tree
from . import paths as state_paths
from .bundle import MANIFEST, BundleError, load_manifest, sha256_file, verify_file
from . import status_file
from .bundle_digest import DigestError, bundle_digest, is_digest

POLL_S = 0.25


class ActivationError(Exception):
    """A rollout step that failed before anything was switched; one line, with an exit code."""

    def __init__(self, message: str, code: int = exitcodes.FAILURE):
        super().__init__(message)
        self.code = code


class Busy(ActivationError):
    """Another activation holds the board's lock."""


@dataclass(frozen=True)
class BoardPaths:
    state: Path

    @property
    def models(self) -> Path:
        return self.state / state_paths.MODELS

    @property
    def current(self) -> Path:
        return self.models / "current"

    @property
    def previous(self) -> Path:
        return self.models / "previous"

    @property
    def fallback(self) -> Path:
        return self.models / "fallback"

    @property
    def staging(self) -> Path:
        return self.state / "staging"

    @property
    def status(self) -> Path:
        return status_file.location(self.state)

    def bundle(self, digest: str) -> Path:
        return self.models / digest


# -- receiving -------------------------------------------------------------------------------------


def _safe_member_path(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ActivationError(f"bundle archive: unsafe member name {name!r}", exitcodes.BAD_INPUT)
    return path


def _extract(stream: IO[bytes], dest: Path) -> None:
    """Regular files and folders only, with names that stay inside `dest` (no links, no devices)."""
    dest.mkdir(parents=True)
    try:
        with tarfile.open(fileobj=stream, mode="r|") as archive:
            for member in archive:
                rel = _safe_member_path(member.name)
                target = dest.joinpath(*rel.parts)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                elif member.isfile():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    source = archive.extractfile(member)
                    assert source is not None  # a regular file always has a body
                    with open(target, "wb") as out:
                        shutil.copyfileobj(source, out)
                else:
                    raise ActivationError(f"bundle archive: {member.name!r} is not a regular file", exitcodes.BAD_INPUT)
    except tarfile.TarError as exc:
        raise ActivationError(f"bundle archive: unreadable ({exc})", exitcodes.BAD_INPUT) from None


def _tidy(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def receive(paths: BoardPaths, *, expected: str | None, folder: Path | None = None, stream: IO[bytes] | None = None) -> Path:
    """Put a bundle into `models/<digest>` after checking its digest and manifest; returns that folder.

    From `stream` (a tar archive, as `edgewatch deploy` sends it over ssh) or from `folder` (a copy
    already on the board, as the Ansible playbook leaves it in staging/). Nothing is switched here.
    """
    paths.staging.mkdir(parents=True, exist_ok=True)
    paths.models.mkdir(parents=True, exist_ok=True)
    partial = paths.staging / f"{expected or 'incoming'}.{os.getpid()}.partial"
    _tidy(partial)
    source = "stdin" if stream is not None else str(folder)
    try:
        if stream is not None:
            _extract(stream, partial)
        elif folder is not None:
            if not folder.is_dir():
                raise ActivationError(f"{folder}: no such bundle folder", exitcodes.BAD_INPUT)
            shutil.copytree(folder, partial, symlinks=True)
        try:
            digest = bundle_digest(partial)
            for variant in load_manifest(partial / MANIFEST).variants:
                verify_file(variant)
        except (DigestError, BundleError) as exc:
            raise ActivationError(str(exc).replace(str(partial), source), exitcodes.BAD_INPUT) from None
        if expected is not None and digest != expected:
            raise ActivationError(f"{source}: sha256 {digest} does not match the expected {expected}", exitcodes.BAD_INPUT)
        final = paths.bundle(digest)
        if final.is_dir() and _digest_or_none(final) == digest:
            return final  # already received earlier: keep the copy the daemon may be reading
        if final.exists():
            _tidy(final)  # a damaged earlier copy
        _readable(partial)
        fsync_tree(partial)  # a copy named by its digest must hold those bytes, power cut or not
        partial.rename(final)
        fsync_path(paths.models)
        return final
    except OSError as exc:  # a full card, a read-only mount: nothing switched, nothing half-written kept
        raise ActivationError(f"{source}: cannot stage the bundle in {paths.staging} ({exc.strerror or exc})") from None
    finally:
        _tidy(partial)


def _readable(folder: Path) -> None:
    """World-readable whatever root's umask: the daemon runs as its own user."""
    folder.chmod(0o755)
    for path in folder.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


# -- the current link ------------------------------------------------------------------------------


def link_target(link: Path) -> Path | None:
    if not link.is_symlink():
        if link.exists():
            raise ActivationError(f"{link}: exists and is not a symbolic link; refusing to replace it")
        return None
    return link.parent / os.readlink(link)


def point(link: Path, target: Path) -> None:
    """Make `link` point at `target` (a sibling) by renaming a new link over it: never missing, never half-written."""
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    os.symlink(target.name, tmp)
    os.replace(tmp, link)
    fsync_path(link.parent)


@contextmanager
def locked(paths: BoardPaths) -> Iterator[None]:
    """One activation at a time per board (two workstations rolling out at once)."""
    paths.models.mkdir(parents=True, exist_ok=True)
    # Read-only: the service user (recover) and root (activate) both lock the same file.
    fd = os.open(paths.models / ".lock", os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Busy(f"{paths.models}: another activation is in progress") from None
        yield
    finally:
        os.close(fd)


# -- the daemon's view -----------------------------------------------------------------------------


def read_status(paths: BoardPaths) -> dict[str, Any] | None:
    try:
        return status_file.read(paths.status)
    except (OSError, ValueError):
        return None  # no daemon yet, or a damaged file: either way, not a healthy daemon


def live_pid(paths: BoardPaths) -> int | None:
    """The running daemon's pid from a fresh status.json whose process still exists."""
    status = read_status(paths)
    pid = status.get("pid") if status_file.is_fresh(status) and status else None
    if not isinstance(pid, int) or pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, owned by the service user; the reload itself will say if we may not signal it
    return pid


def _digest_or_none(folder: Path) -> str | None:
    try:
        return bundle_digest(folder)
    except DigestError:
        return None  # a damaged copy: replaced below


def model_hashes(bundle_dir: Path) -> set[str]:
    """sha256 of each model file of the bundle: what the daemon reports in status.json model.sha256."""
    bundle = load_manifest(bundle_dir / MANIFEST)
    return {sha256_file(v.file) for v in bundle.variants}


def serving(status: dict[str, Any], bundle_dir: Path, other_dir: Path | None) -> bool:
    """True when the daemon runs a model file of `bundle_dir` (and not merely one it shares with `other_dir`)."""
    model = status.get("model") or {}
    served = model.get("sha256")
    mine = model_hashes(bundle_dir)
    if served not in mine:
        return False
    if other_dir is None or served not in model_hashes(other_dir):
        return True
    # Both bundles hold this file: only the folder the daemon loaded tells them apart, and only if it
    # names that folder itself; a path through the `current` link says what current is now, not
    # what the daemon loaded.
    path = model.get("path")
    if not path or os.path.realpath(path) != os.path.abspath(path):
        return False
    return Path(path).is_relative_to(bundle_dir.resolve())


def reload_failed(status: dict[str, Any], since: float) -> bool:
    """The daemon tried a reload after `since` and kept its old model: no point waiting longer."""
    reload = status.get("reload") or {}
    return reload.get("ok") is False and reload.get("at", 0) >= since


def wait_for(paths: BoardPaths, want: Callable[[dict[str, Any]], bool], since: float, timeout: float) -> tuple[bool, dict[str, Any] | None]:
    """Poll status.json until a fresh report written after `since` is healthy and satisfies `want`;
    False at once when the daemon reports a reload after `since` that failed."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        status = read_status(paths)
        if status is not None:
            last = status
            if status_file.is_healthy(status) and status.get("updated", 0) >= since and want(status):
                return True, status
            if since and reload_failed(status, since):
                return False, status
        if time.monotonic() >= deadline:
            return False, last
        time.sleep(POLL_S)


def _signal_reload(paths: BoardPaths) -> bool:
    pid = live_pid(paths)
    if pid is None:
        return False  # systemd restarts a dead daemon on its own, and it will read `current` then
    try:
        os.kill(pid, signal.SIGHUP)
    except PermissionError:
        raise ActivationError(f"not allowed to signal the daemon (pid {pid}): run activate as root (sudo)") from None
    except ProcessLookupError:
        return False
    return True


def _why(status: dict[str, Any] | None) -> str:
    if status is None:
        return "no status.json from the daemon"
    if not status_file.is_fresh(status):
        return "the daemon stopped reporting (status.json is stale)"
    detail = [f"state={status.get('state')}", f"healthy={status.get('healthy')}"]
    model = status.get("model") or {}
    detail.append(f"model={model.get('name')}/{model.get('variant')} sha256={str(model.get('sha256'))[:12]}")
    if status.get("last_error"):
        detail.append(f"last_error={status['last_error']}")
    return ", ".join(detail)


def prune(paths: BoardPaths) -> list[str]:
    """Remove bundles that are neither current nor previous (an SD card is small); returns their names."""
    keep = {t.name for t in (link_target(paths.current), link_target(paths.previous)) if t is not None}
    removed = []
    for folder in paths.models.iterdir():
        if folder.is_dir() and not folder.is_symlink() and folder.name not in keep and is_digest(folder.name):
            _tidy(folder)
            removed.append(folder.name)
    return removed


def activate(paths: BoardPaths, bundle_dir: Path, timeout: float) -> dict[str, Any]:
    """Switch to `bundle_dir` (already under models/), reload, wait for health; switch back on failure.

    Returns a result dict: result = activated | unchanged | rolled_back | failed, ok, bundle, previous,
    seconds, model (the daemon's report) and error.
    """
    t0 = time.monotonic()
    old = link_target(paths.current)
    result: dict[str, Any] = {"bundle": bundle_dir.name, "previous": old.name if old else None}

    def done(name: str, status: dict[str, Any] | None, error: str | None = None) -> dict[str, Any]:
        paths.fallback.unlink(missing_ok=True)  # finished, one way or the other
        result["pruned"] = prune(paths)
        result.update(result=name, ok=name in ("activated", "unchanged"), seconds=round(time.monotonic() - t0, 2),
                      model=(status or {}).get("model"), error=error)
        return result

    if live_pid(paths) is None:
        raise ActivationError(f"no running daemon ({paths.status} is missing or older than {status_file.STALE_S:g} s); nothing switched")
    if old is not None and old.resolve() == bundle_dir.resolve():
        ok, status = wait_for(paths, lambda s: serving(s, bundle_dir, None), 0, timeout)
        return done("unchanged", status, None if ok else f"already current but not healthy: {_why(status)}")

    if old is not None:
        point(paths.fallback, old)
    point(paths.current, bundle_dir)
    since = time.time()
    _signal_reload(paths)
    ok, status = wait_for(paths, lambda s: serving(s, bundle_dir, old), since, timeout)
    if ok:
        if old is not None:
            point(paths.previous, old)
        return done("activated", status)

    error = (f"the daemon's reload failed ({_why(status)})" if status is not None and reload_failed(status, since)
             else f"not healthy on the new bundle within {timeout:g} s ({_why(status)})")
    if old is None:
        paths.current.unlink()
        _signal_reload(paths)
        return done("failed", status, error + "; no previous bundle to roll back to")
    point(paths.current, old)
    since = time.time()
    _signal_reload(paths)
    back, status = wait_for(paths, lambda s: serving(s, old, bundle_dir), since, timeout)
    if not back:
        error += f"; rolled back to {old.name} but it is not healthy either ({_why(status)})"
    return done("rolled_back", status, error)


def recover(paths: BoardPaths) -> dict[str, Any]:
    """Before the daemon starts: finish an activation that never finished by switching back.

    A power cut or a killed `activate` between the switch and the health check leaves `fallback`;
    the new bundle was never seen healthy, so the daemon must not boot on it.
    """
    if not paths.models.is_dir():
        return {"result": "nothing", "ok": True}
    try:
        with locked(paths):
            target = link_target(paths.fallback)
            if target is None:
                return {"result": "nothing", "ok": True}
            unfinished = link_target(paths.current)
            point(paths.current, target)
            paths.fallback.unlink()
            return {"result": "recovered", "ok": True, "bundle": target.name,
                    "abandoned": unfinished.name if unfinished else None}
    except Busy:
        # An activation is running right now (the daemon crashed under it): it rolls back itself.
        return {"result": "busy", "ok": True}
