"""cgroup v2 memory of this process's own cgroup (under systemd: the service's MemoryHigh=/MemoryMax=).

The cgroup comes from the `0::/path` line of /proc/self/cgroup; the cgroup2 mount from
/proc/self/mountinfo (a hybrid host mounts it at /sys/fs/cgroup/unified), else /sys/fs/cgroup.
cgroup v1 (memory.usage_in_bytes) is not read: current Raspberry Pi OS and Debian boot v2 only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .psi import Pressure, read_pressure_file
from .sysfs import read_keyed, read_text, under

MB = 1024 * 1024


def _cgroup2_mount(root: Path) -> str:
    text = read_text(under(root, "/proc/self/mountinfo")) or ""
    for line in text.splitlines():
        # "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw": type follows " - ".
        pre, sep, post = line.partition(" - ")
        if sep and post.split()[:1] == ["cgroup2"]:
            fields = pre.split()
            if len(fields) >= 5:
                return fields[4]
    return "/sys/fs/cgroup"


def find_cgroup(root: str | Path) -> tuple[str, Path] | None:
    """This process's cgroup v2 (its name, its folder under `root`), or None (no v2 hierarchy, or v1 only)."""
    root = Path(root)
    text = read_text(under(root, "/proc/self/cgroup"))
    for line in (text or "").splitlines():
        if line.startswith("0::"):
            name = line[3:]
            folder = under(root, _cgroup2_mount(root)) / name.lstrip("/")
            return (name, folder) if folder.is_dir() else None
    return None


def _limit_mb(path: Path) -> float | None:
    text = read_text(path)
    if text is None or text == "max":
        return None  # "max" = no limit
    try:
        return int(text) / MB
    except ValueError:
        return None


@dataclass(frozen=True)
class CgroupMemory:
    path: str  # the cgroup's path as the board names it, e.g. /system.slice/edgewatch.service
    current_mb: float | None
    high_mb: float | None  # None = no limit
    max_mb: float | None
    events: dict[str, int] = field(default_factory=dict)  # low, high, max, oom, oom_kill (counts since creation)
    pressure: Pressure | None = None

    @property
    def source(self) -> str:
        return f"sensor:cgroup{self.path}"


def read_cgroup_memory(name: str, folder: Path) -> CgroupMemory:
    current = read_text(folder / "memory.current")
    return CgroupMemory(
        path=name,
        current_mb=int(current) / MB if current and current.isdigit() else None,
        high_mb=_limit_mb(folder / "memory.high"),
        max_mb=_limit_mb(folder / "memory.max"),
        events=read_keyed(folder / "memory.events"),
        pressure=read_pressure_file(folder / "memory.pressure"),
    )
