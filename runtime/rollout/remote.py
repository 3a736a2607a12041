"""The workstation side of a rollout: send a bundle to many boards over ssh, in parallel.

Each board gets one ssh command, `edgewatch activate --sha256 D --timeout S -`, with the bundle as
a tar stream on its stdin: the board stages it, checks the digest, switches, waits for health and
rolls back on its own (runtime.activation), so a dropped connection never leaves it half-switched.
The remote command line is built from an argument list, each word quoted with shlex.quote.
"""

from __future__ import annotations

import io
import json
import shlex
import subprocess
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..bundle_digest import bundle_files

# Never prompt (a fleet run has nobody to answer); notice a dead link instead of hanging on it.
SSH_DEFAULTS = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=15", "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4"]
TRANSFER_ALLOWANCE_S = 120.0  # on top of the health waits, for the copy itself over a slow link


@dataclass(frozen=True)
class Remote:
    """How to reach the boards and what to run there."""

    ssh: tuple[str, ...] = ("ssh", *SSH_DEFAULTS)
    edgewatch: tuple[str, ...] = ("edgewatch",)  # e.g. ("sudo", "-n", "edgewatch") for a non-root login

    def command(self, host: str, argv: list[str]) -> list[str]:
        if not host or host.startswith("-"):
            raise ValueError(f"bad host {host!r}")
        remote = " ".join(shlex.quote(word) for word in [*self.edgewatch, *argv])
        return [*self.ssh, "--", host, remote]


def pack(folder: Path) -> bytes:
    """The bundle as an uncompressed tar (models barely compress), names relative to the folder."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path in bundle_files(folder):
            info = archive.gettarinfo(str(path), arcname=path.relative_to(folder).as_posix())
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = 0o644
            with open(path, "rb") as f:
                archive.addfile(info, f)
    return buf.getvalue()


def _last_json_line(text: str) -> dict[str, Any] | None:
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            return value if isinstance(value, dict) else None
    return None


def deploy_host(remote: Remote, host: str, payload: bytes, digest: str, timeout: float, state_dir: str | None) -> dict[str, Any]:
    argv = ["activate", "--sha256", digest, "--timeout", f"{timeout:g}"]
    if state_dir:
        argv += ["--state-dir", state_dir]
    argv.append("-")
    t0 = time.monotonic()
    try:
        proc = subprocess.run(remote.command(host, argv), input=payload, capture_output=True,
                              timeout=2 * timeout + TRANSFER_ALLOWANCE_S)
    except subprocess.TimeoutExpired:
        return {"host": host, "ok": False, "result": "timeout", "seconds": round(time.monotonic() - t0, 2),
                "error": "no answer from the board in time; it finishes (or rolls back) on its own: check `edgewatch status` there"}
    stderr = proc.stderr.decode(errors="replace").strip()
    result = _last_json_line(proc.stdout.decode(errors="replace"))
    if result is None:
        # ssh itself failed (255), or the board has no edgewatch: say what the remote said.
        why = stderr.splitlines()[-1] if stderr else f"exit status {proc.returncode}"
        result = {"ok": False, "result": "unreachable" if proc.returncode == 255 else "error", "error": why}
    # The board's own verdict decides: a session that dropped after it finished does not undo it.
    result.update(host=host, exit=proc.returncode, seconds=round(time.monotonic() - t0, 2), ok=bool(result.get("ok")))
    return result


def deploy(remote: Remote, hosts: list[str], folder: Path, digest: str, *, parallel: int, timeout: float,
           state_dir: str | None = None) -> list[dict[str, Any]]:
    """Results in the order of `hosts`."""
    payload = pack(folder)
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(hosts)))) as pool:
        return list(pool.map(lambda h: deploy_host(remote, h, payload, digest, timeout, state_dir), hosts))


def summary(results: list[dict[str, Any]]) -> str:
    width = max([4, *(len(r["host"]) for r in results)])
    lines = [f"{'HOST':<{width}}  {'RESULT':<11}  {'SECONDS':>7}  DETAIL"]
    for r in results:
        model = r.get("model") or {}
        detail = r.get("error") or f"{model.get('name')}/{model.get('variant')} sha256 {str(model.get('sha256'))[:12]}"
        lines.append(f"{r['host']:<{width}}  {r['result']:<11}  {r['seconds']:>7.1f}  {detail}")
    ok = sum(1 for r in results if r["ok"])
    lines.append(f"{len(results)} host(s): {ok} on the new bundle, {len(results) - ok} failed")
    return "\n".join(lines)
