"""What each variant of a bundle costs on this board: measured here, cached per board and bundle.

The converter's figures in model.json are another machine's (an x86 without VNNI runs int8 no
faster than float32; a Raspberry Pi runs it in about half the time). So the board measures every
variant of the bundle it serves: invoke latency and CPU time per invoke at each thread count, and
peak RSS, each variant in a fresh process (`edgewatch bench`: a process's peak RSS is its own, and
one variant's pages must not count against the next), at a lower priority than the daemon. The
pipeline's frame rate per thread count (`edgewatch bench --pipeline --save`, or the daemon's own
trial) says which thread count serves best.

The figures are kept in the state folder, `costs/<bundle digest>.json`, with the board they were
measured on (its model, CPU, cores and interpreter): a restart, or the same bundle again, reads them
back; another board or another bundle measures anew.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..atomic import replace_bytes
from ..bundle_digest import bundle_digest
from .sensors.power.estimate import board_model

log = logging.getLogger(__name__)

COSTS = "costs"
SCHEMA = 1
NICE = 10  # below the daemon: the measurement must not take the pipeline's CPU
BENCH_TIMEOUT_S = 600.0


def board_identity(root: str | Path = "/") -> dict[str, Any]:
    """What makes one board's figures another board's: model, CPU, cores, interpreter."""
    from ..interpreter import load_backend

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path(root, "proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "CPU part") and value.strip():
                cpu = value.strip()
                break
    except OSError:
        pass
    try:
        backend = load_backend()
        interpreter = f"{backend.name} {backend.version}"
    except Exception:  # noqa: BLE001 - no interpreter: nothing will be measured anyway
        interpreter = "none"
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return {"model": board_model(root) or platform.machine(), "cpu": cpu, "cores": cores, "interpreter": interpreter}


@dataclass
class BoardCosts:
    """Measured on one board for one bundle (by digest)."""

    digest: str
    board: dict[str, Any]
    # variant -> {"threads": {"1": {"latency_ms", "cpu_ms"}, ...}, "peak_rss_mb"}
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    # threads -> {"fps", "raw_fps", "cpu_ms_per_frame", "variant", "how"}: the pipeline at that thread count
    pipeline: dict[str, dict[str, Any]] = field(default_factory=dict)
    measured: float = 0.0  # unix time of the last measurement

    def cost_ms(self, variant: str, threads: int) -> float | None:
        """CPU milliseconds per invoke (what a frame costs in energy), at `threads` or the nearest measured."""
        per = (self.variants.get(variant) or {}).get("threads") or {}
        if not per:
            return None
        key = str(threads) if str(threads) in per else min(per, key=lambda t: abs(int(t) - threads))
        value = per[key].get("cpu_ms")
        return float(value) if isinstance(value, (int, float)) and value > 0 else None

    def latency_ms(self, variant: str, threads: int) -> float | None:
        per = (self.variants.get(variant) or {}).get("threads") or {}
        value = (per.get(str(threads)) or {}).get("latency_ms")
        return float(value) if isinstance(value, (int, float)) and value > 0 else None

    def peak_rss_mb(self, variant: str) -> float | None:
        value = (self.variants.get(variant) or {}).get("peak_rss_mb")
        return float(value) if isinstance(value, (int, float)) and value > 0 else None

    def best_threads(self) -> int | None:
        """The thread count at which the pipeline served most frames (least CPU per frame among
        ties within 3 %, since a paced source caps every setting at its own rate)."""
        if not self.pipeline:
            return None
        top = max(p["fps"] for p in self.pipeline.values())
        close = [(t, p) for t, p in self.pipeline.items() if p["fps"] >= 0.97 * top]
        return int(min(close, key=lambda tp: (tp[1].get("cpu_ms_per_frame") or 0.0, int(tp[0])))[0])

    def complete(self, variants: list[str]) -> bool:
        return all(v in self.variants for v in variants)

    def as_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "digest": self.digest, "board": self.board, "measured": self.measured,
                "variants": self.variants, "pipeline": self.pipeline}


def cache_path(state_dir: Path, digest: str) -> Path:
    return Path(state_dir) / COSTS / f"{digest}.json"


def any_cached(state_dir: Path) -> bool:
    """Whether this board has measured any bundle (so that identifying one is worth its hashing)."""
    folder = Path(state_dir) / COSTS
    return folder.is_dir() and any(folder.glob("*.json"))


def load(state_dir: Path, digest: str, board: dict[str, Any]) -> BoardCosts | None:
    """The cached figures for this bundle on this board; None when there are none (or they are another board's)."""
    path = cache_path(state_dir, digest)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("%s: unreadable, measuring again (%s)", path, exc)
        return None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or data.get("digest") != digest:
        return None
    if data.get("board") != board:
        log.info("%s: measured on another board (%s); measuring again", path, data.get("board"))
        return None
    variants, pipeline = data.get("variants"), data.get("pipeline")
    return BoardCosts(digest, board, variants if isinstance(variants, dict) else {},
                      pipeline if isinstance(pipeline, dict) else {}, float(data.get("measured") or 0.0))


def save(state_dir: Path, costs: BoardCosts) -> Path:
    path = cache_path(state_dir, costs.digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    costs.measured = time.time()
    replace_bytes(path, (json.dumps(costs.as_dict(), indent=1) + "\n").encode())
    return path


def measure_variant(bundle: Path, variant: str, threads: list[int], runs: int = 30, nice: int = NICE,
                    stop: threading.Event | None = None) -> dict[str, Any]:
    """One variant in a fresh `edgewatch bench` process: {"threads": {...}, "peak_rss_mb"}.
    Raises RuntimeError (one line) when the bench fails or `stop` is set."""
    cmd = [sys.executable, "-m", "runtime.cli", "bench", str(bundle), "--variant", variant,
           "--threads", ",".join(map(str, threads)), "--runs", str(runs), "--warmup", "3", "--json"]

    def lower_priority() -> None:
        os.nice(nice)

    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lower_priority if nice else None, cwd=Path(__file__).resolve().parents[2])
    deadline = time.monotonic() + BENCH_TIMEOUT_S
    while proc.poll() is None:
        if (stop is not None and stop.is_set()) or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"{variant}: measurement {'stopped' if stop is not None and stop.is_set() else 'timed out'}")
        time.sleep(0.1)
    out, err = proc.communicate()
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not rows:
        last = (err.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{variant}: bench exited {proc.returncode}: {last}")
    return {
        "threads": {str(r["threads"]): {"latency_ms": r["invoke_ms"]["p50"], "cpu_ms": r["invoke_cpu_ms"]} for r in rows},
        "peak_rss_mb": max(r["peak_rss_mb"] for r in rows),
    }


def measure_bundle(bundle: Path, variants: list[str], threads: list[int], board: dict[str, Any], *, runs: int = 30,
                   nice: int = NICE, known: BoardCosts | None = None, stop: threading.Event | None = None,
                   may_run: Callable[[], bool] = lambda: True, on_variant: Callable[[str, dict], None] | None = None) -> BoardCosts:
    """Every variant not yet in `known`, one at a time; `may_run()` is asked before each (the
    daemon waits while its budget is tight) and `stop` ends it early (what was measured is kept)."""
    costs = known or BoardCosts(bundle_digest(bundle), board)
    for name in variants:
        if name in costs.variants:
            continue
        while not may_run():
            if stop is not None and stop.wait(5.0):
                return costs
        if stop is not None and stop.is_set():
            return costs
        costs.variants[name] = measure_variant(bundle, name, threads, runs, nice, stop)
        if on_variant is not None:
            on_variant(name, costs.variants[name])
    return costs
