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
# As deploy/install.sh has on a board: python3-venv for the venv, python3-pip (the venv is made
# without its own pip), ca-certificates for pip over https.
ROOT_PACKAGES = ("python3", "python3-venv", "python3-pip", "ca-certificates")
CHROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CA_IN_ROOT = "/etc/ssl/certs/host-ca-bundle.crt"
PIP_CACHE_IN_ROOT = "/var/cache/pip"


@dataclass(frozen=True)
class Board:
    """The CPU a Raspberry Pi's kernel describes, for qemu (`cpu`) and for what runs inside.

    Under qemu-user, /proc/cpuinfo and /sys/devices/system/cpu are the x86 host's. XNNPACK's
    cpuinfo cannot use them: with the host's it crashes, without them it fails to initialise and
    TFLite silently runs its own kernels, which no board runs (and whose int8 results differ from
    XNNPACK's). So each root is shown the board's own view instead.
    """

    cpu: str  # qemu's CPU model
    name: str
    part: int  # MIDR part number, which cpuinfo maps to the microarchitecture
    variant: int
    revision: int
    features: str  # as that board's Linux prints them
    max_khz: int
    cores: int = 4

    def proc_cpuinfo(self) -> str:
        core = ("processor\t: {n}\nBogoMIPS\t: 108.00\nFeatures\t: {f}\nCPU implementer\t: 0x41\n"
                "CPU architecture: 8\nCPU variant\t: {v:#x}\nCPU part\t: {p:#05x}\nCPU revision\t: {r}\n\n")
        text = "".join(core.format(n=n, f=self.features, v=self.variant, p=self.part, r=self.revision) for n in range(self.cores))
        return text + f"Model\t\t: {self.name}\n"

    def write_sys_cpu(self, dest: Path) -> None:
        """A /sys/devices/system/cpu with what cpuinfo reads: the core lists, frequencies, topology."""
        span = f"0-{self.cores - 1}\n"
        files = {"possible": span, "present": span, "online": span}
        for n in range(self.cores):
            files |= {f"cpu{n}/cpufreq/cpuinfo_max_freq": f"{self.max_khz}\n",
                      f"cpu{n}/cpufreq/cpuinfo_min_freq": "600000\n",
                      f"cpu{n}/topology/physical_package_id": "0\n", f"cpu{n}/topology/core_id": f"{n}\n",
                      f"cpu{n}/topology/core_siblings_list": span, f"cpu{n}/topology/package_cpus_list": span,
                      f"cpu{n}/topology/thread_siblings_list": f"{n}\n", f"cpu{n}/topology/core_cpus_list": f"{n}\n"}
        for name, text in files.items():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            (dest / name).write_text(text)


BOARDS = {
    b.cpu: b
    for b in (
        Board("cortex-a53", "Raspberry Pi 3 Model B Plus Rev 1.3", 0xD03, 0x0, 4, "fp asimd evtstrm crc32 cpuid", 1400000),
        Board("cortex-a72", "Raspberry Pi 4 Model B Rev 1.4", 0xD08, 0x0, 3, "fp asimd evtstrm crc32 cpuid", 1800000),
        Board("cortex-a76", "Raspberry Pi 5 Model B Rev 1.0", 0xD0B, 0x4, 1,
              "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp", 2400000),
    )
}


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
    flags = next((line.split()[1] for line in (BINFMT / QEMU_ENTRY).read_text().splitlines() if line.startswith("flags:")), "")
    if "F" not in flags:
        raise RootError(f"binfmt_misc {QEMU_ENTRY}: flags {flags!r} lack F; re-register with Debian's qemu-user-static entry")


@dataclass(frozen=True)
class RootCache:
    """`<cache>/roots/<suite>-arm64.tar`: the debootstrapped root, built once and reused, with
    `<suite>-arm64.packages` listing what it was built with: a root from an older ROOT_PACKAGES is
    topped up with apt (a minute) instead of debootstrapped again (18-36 minutes here)."""

    cache: Path
    mirror: str

    def tarball(self, suite: str) -> Path:
        return self.cache / "roots" / f"{suite}-arm64.tar"

    def missing(self, suite: str) -> list[str]:
        """ROOT_PACKAGES the cached root was not built with (all of them when there is none)."""
        stamp = self.tarball(suite).with_suffix(".packages")
        have = set(stamp.read_text().split()) if stamp.exists() and self.tarball(suite).exists() else set()
        return [p for p in ROOT_PACKAGES if p not in have]

    def ensure(self, suite: str) -> Path:
        tar = self.tarball(suite)
        missing = self.missing(suite)
        if not missing:
            return tar
        build = self.cache / "build" / f"{suite}.root"
        remove_tree(build)
        tar.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        env = _chroot_env({"DEBIAN_FRONTEND": "noninteractive"})
        if tar.exists():
            log(f"{suite} root: adding {' '.join(missing)}")
            build.mkdir(parents=True)
            run(["tar", "--numeric-owner", "-C", str(build), "-xf", str(tar)])
            shutil.copyfile("/etc/resolv.conf", build / "etc" / "resolv.conf")
            run(["chroot", str(build), "apt-get", "update", "-q"], env=env)
            run(["chroot", str(build), "apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], env=env)
        else:
            log(f"debootstrap {suite} arm64 (once; cached as {tar})")
            run(["nice", "-n", "10", "debootstrap", "--arch=arm64", "--variant=minbase",
                 f"--include={','.join(ROOT_PACKAGES)}", suite, str(build), self.mirror])
        run(["chroot", str(build), "apt-get", "clean"], env=env)
        partial = tar.with_suffix(".tar.partial")
        run(["tar", "--numeric-owner", "-C", str(build), "-cf", str(partial), "."])
        partial.rename(tar)
        tar.with_suffix(".packages").write_text(" ".join(ROOT_PACKAGES) + "\n")
        remove_tree(build)
        log(f"{suite} root ready in {time.monotonic() - started:.0f} s")
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
                 readonly_binds: tuple[Path, ...], board: Board):
        self.tarball = tarball
        self.board = board
        self.cpu_view = path.with_name(path.name + ".cpu")  # on the host: bind mounts need a source
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
        remove_tree(self.cpu_view)
        self.board.write_sys_cpu(self.cpu_view / "sys")
        (self.cpu_view / "cpuinfo").write_text(self.board.proc_cpuinfo())
        try:
            self._mount(["-t", "proc", "proc"], "/proc")
            self._mount(["--bind", "-o", "ro", str(self.cpu_view / "cpuinfo")], "/proc/cpuinfo", file=True)
            self._mount(["--rbind", "/sys"], "/sys")
            self._mount(["--bind", "-o", "ro", str(self.cpu_view / "sys")], "/sys/devices/system/cpu")
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
        remove_tree(self.cpu_view)

    def inside(self, path: str) -> Path:
        return self.path / path.lstrip("/")

    def _mount(self, how: list[str], where: str, file: bool = False) -> None:
        target = self.inside(where)
        if not file:
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
        base["QEMU_CPU"] = self.board.cpu
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

