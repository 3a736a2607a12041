"""Debian arm64 roots run under qemu-user: binfmt registration, the cached root tarballs, and a
root prepared for one run (mounts, host CA bundle, commands run inside it through chroot).

Everything here runs on the x86 host as root. Mounts are made inside a private mount namespace
(see check.py), so a killed run leaves none behind on the host.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BINFMT = Path("/proc/sys/fs/binfmt_misc")
QEMU_ENTRY = "qemu-aarch64"
# Debian's own registration line (qemu-user-static), used when update-binfmts is missing.
QEMU_CONF = Path("/usr/lib/binfmt.d/qemu-aarch64.conf")
# python3-venv for the board's venv, ca-certificates for pip over https.
ROOT_PACKAGES = ("python3", "python3-venv", "ca-certificates")
CHROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CA_IN_ROOT = "/etc/ssl/certs/host-ca-bundle.crt"
PIP_CACHE_IN_ROOT = "/var/cache/pip"


class RootError(RuntimeError):
    """A step of building or entering a root failed; one line saying which and why."""


def log(message: str) -> None:
    print(f"[arm64 {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("check", True)
    try:
        return subprocess.run(cmd, **kwargs)
    except subprocess.CalledProcessError as exc:
        raise RootError(f"{' '.join(cmd[:6])}{' ...' if len(cmd) > 6 else ''}: exit {exc.returncode}") from None


def binfmt_state() -> str:
    """'enabled' / 'disabled' / 'missing' (no entry) / 'unmounted' (binfmt_misc not mounted)."""
    if not (BINFMT / "register").exists():
        return "unmounted"
    entry = BINFMT / QEMU_ENTRY
    if not entry.exists():
        return "missing"
    return entry.read_text().splitlines()[0].strip()


def ensure_binfmt() -> None:
    """Register qemu-aarch64 with the F flag (interpreter opened at registration, so a chroot needs
    no qemu binary inside it). Tries update-binfmts, then Debian's binfmt.d line written directly."""
    if binfmt_state() == "unmounted":
        run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)])
    if binfmt_state() != "enabled" and shutil.which("update-binfmts"):
        subprocess.run(["update-binfmts", "--enable", QEMU_ENTRY], check=False)
    if binfmt_state() == "missing" and QEMU_CONF.exists():
        (BINFMT / "register").write_text(QEMU_CONF.read_text().strip())
    if binfmt_state() == "disabled":
        (BINFMT / QEMU_ENTRY).write_text("1")
    state = binfmt_state()
    if state != "enabled":
        raise RootError(f"binfmt_misc {QEMU_ENTRY}: {state} (apt-get install qemu-user-static binfmt-support)")
    flags = next((l.split()[1] for l in (BINFMT / QEMU_ENTRY).read_text().splitlines() if l.startswith("flags:")), "")
    if "F" not in flags:
        raise RootError(f"binfmt_misc {QEMU_ENTRY}: flags {flags!r} lack F; re-register with Debian's qemu-user-static entry")


@dataclass(frozen=True)
class RootCache:
    """`<cache>/roots/<suite>-arm64.tar`: the debootstrapped root, built once and reused."""

    cache: Path
    mirror: str

    def tarball(self, suite: str) -> Path:
        return self.cache / "roots" / f"{suite}-arm64.tar"

    def ensure(self, suite: str) -> Path:
        tar = self.tarball(suite)
        if tar.exists():
            return tar
        build = self.cache / "build" / f"{suite}.root"
        remove_tree(build)
        tar.parent.mkdir(parents=True, exist_ok=True)
        log(f"debootstrap {suite} arm64 (once; cached as {tar})")
        started = time.monotonic()
        run(["nice", "-n", "10", "debootstrap", "--arch=arm64", "--variant=minbase",
             f"--include={','.join(ROOT_PACKAGES)}", suite, str(build), self.mirror])
        run(["chroot", str(build), "apt-get", "clean"], env=_chroot_env({}))
        partial = tar.with_suffix(".tar.partial")
        run(["tar", "--numeric-owner", "-C", str(build), "-cf", str(partial), "."])
        partial.rename(tar)
        remove_tree(build)
        log(f"{suite} root built in {time.monotonic() - started:.0f} s")
        return tar


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below path in this process's mount namespace."""
    prefix = str(path.resolve())
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            points.append(point)
    return points


def remove_tree(path: Path) -> None:
    """rm -rf that refuses while anything is mounted below: a bind mount of a host folder would
    otherwise be emptied through it."""
    if not path.exists():
        return
    if mounts_under(path):
        raise RootError(f"{path}: still has mounts ({', '.join(mounts_under(path))}); not removing")
    shutil.rmtree(path)


def _chroot_env(extra: dict[str, str]) -> dict[str, str]:
    # A clean environment: the host's variables (OPENBLAS_CORETYPE for an x86 core, pip config
    # pointing at host folders) mean nothing, or something wrong, on arm64.
    env = {"PATH": CHROOT_PATH, "HOME": "/root", "LANG": "C.UTF-8", "TERM": "dumb"}
    env.update(extra)
    return env


class Root:
    """One suite's root extracted fresh for this run, with /proc, /sys, /dev and the shared
    folders mounted. Use as a context manager; leaving it unmounts everything."""

    def __init__(self, tarball: Path, path: Path, pip_cache: Path, ca_bundle: Path | None,
                 readonly_binds: tuple[Path, ...], cpu: str):
        self.tarball = tarball
        self.cpu = cpu
        self.path = path
        self.pip_cache = pip_cache
        self.ca_bundle = ca_bundle
        self.readonly_binds = readonly_binds
        self._mounted: list[Path] = []

    def __enter__(self) -> Root:
        remove_tree(self.path)
        self.path.mkdir(parents=True)
        run(["tar", "--numeric-owner", "-C", str(self.path), "-xf", str(self.tarball)])
        shutil.copyfile("/etc/resolv.conf", self.path / "etc" / "resolv.conf")
        if self.ca_bundle:
            # Trust what the host trusts: pip in the root reaches PyPI through the same network.
            shutil.copyfile(self.ca_bundle, self.inside(CA_IN_ROOT))
        self.pip_cache.mkdir(parents=True, exist_ok=True)
        try:
            self._mount(["-t", "proc", "proc"], "/proc")
            self._mount(["--rbind", "/sys"], "/sys")
            # The host's CPU topology is x86's: XNNPACK's cpuinfo reads it as an ARM machine's
            # and crashes (SIGSEGV in allocate_tensors). Hidden, cpuinfo falls back to defaults.
            self._mount(["-t", "tmpfs", "-o", "ro,size=4k", "cpus-hidden"], "/sys/devices/system/cpu")
            self._mount(["--rbind", "/dev"], "/dev")
            self._mount(["--bind", str(self.pip_cache)], PIP_CACHE_IN_ROOT)
            for host_dir in self.readonly_binds:
                self._mount(["--bind", str(host_dir)], str(host_dir))
                run(["mount", "-o", "remount,bind,ro", str(self.inside(str(host_dir)))])
        except BaseException:
            self._unmount()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._unmount()

    def inside(self, path: str) -> Path:
        return self.path / path.lstrip("/")

    def _mount(self, how: list[str], where: str) -> None:
        target = self.inside(where)
        target.mkdir(parents=True, exist_ok=True)
        run(["mount", *how, str(target)])
        self._mounted.append(target)

    def _unmount(self) -> None:
        for target in reversed(self._mounted):
            subprocess.run(["umount", "-R", str(target)], check=False)
        self._mounted.clear()

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        base = {"PIP_CACHE_DIR": PIP_CACHE_IN_ROOT, "PIP_DISABLE_PIP_VERSION_CHECK": "1",
                "PIP_NO_INPUT": "1", "PIP_ROOT_USER_ACTION": "ignore", "PIP_CONFIG_FILE": "/dev/null"}
        if self.ca_bundle:
            base.update(PIP_CERT=CA_IN_ROOT, SSL_CERT_FILE=CA_IN_ROOT)
        # qemu-user reads QEMU_CPU at every exec: the board's core, not qemu's default "max"
        # (which offers SVE/SME that no Raspberry Pi has).
        base["QEMU_CPU"] = self.cpu
        return _chroot_env(base | (extra or {}))

    def run(self, cmd: list[str], cwd: str = "/", capture: bool = False,
            check: bool = True) -> subprocess.CompletedProcess:
        """cmd inside the root (arm64, through qemu), as root, with a clean environment."""
        argv = ["chroot", str(self.path), "/usr/bin/env", "-C", cwd, *cmd]
        return run(argv, env=self.env(), check=check, text=True,
                   stdout=subprocess.PIPE if capture else None)

    def disk_usage_mb(self, path: str) -> float:
        """Blocks used (du -sk), in MiB: what the folder takes on the board's SD card."""
        out = run(["du", "-sk", str(self.inside(path))], stdout=subprocess.PIPE, text=True).stdout
        return int(out.split()[0]) / 1024


def python_version(root: Root) -> str:
    return root.run(["python3", "-c", "import platform; print(platform.python_version())"], capture=True).stdout.strip()


def machine(root: Root) -> str:
    return root.run(["uname", "-m"], capture=True).stdout.strip()


def copy_source(source: Path, dest: Path) -> None:
    """The repo without VCS or build leftovers: pip builds in-tree, so it builds in this copy."""
    ignore = shutil.ignore_patterns(".git", "__pycache__", ".pytest_cache", "build", "*.egg-info", ".hypothesis")
    shutil.copytree(source, dest, ignore=ignore, symlinks=True)


def copy_input(path: Path, dest_dir: Path) -> Path:
    dest = dest_dir / path.name
    if path.is_dir():
        shutil.copytree(path, dest, symlinks=False)
    else:
        dest_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
    return dest

