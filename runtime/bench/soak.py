"""`edgewatch bench --soak 1h`: the daemon's memory over hours, at full speed.

The real daemon (`edgewatch run`, a separate process) on the embedded default — the bundled
person model on the bundled video, looped and read as fast as possible, with the event log and
snapshots on — while its RSS is sampled every few seconds. Printed: RSS once a minute, then the
growth rate over the last half of the run (a least-squares slope, MB per hour), which is the
figure that says whether memory levels off. Target: < 1 MB per hour after the first 10 minutes.
`--plot FILE.png` draws the curve (needs matplotlib, a workstation package).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from ..errors import CommandError

SAMPLE_S = 5.0
WARMUP_S = 600.0  # the first minutes fill caches and the allocator's arenas: not growth


def parse_duration(text: str) -> float:
    """`90s`, `30m`, `1h`, or plain seconds."""
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        value = float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text)
    except (ValueError, IndexError):
        raise CommandError(f"--soak: {text!r} is not a duration (90s, 30m, 1h)") from None
    if not 60 <= value <= 7 * 86400:
        raise CommandError(f"--soak: must be between 1 minute and a week, got {text!r}")
    return value


def slope_mb_per_h(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) samples, in MB per hour."""
    n = len(samples)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in samples) / n
    mr = sum(r for _, r in samples) / n
    var = sum((t - mt) ** 2 for t, _ in samples)
    return 3600.0 * sum((t - mt) * (r - mr) for t, r in samples) / var if var else 0.0


def run_soak(args: argparse.Namespace) -> int:
    seconds = parse_duration(args.soak)
    with tempfile.TemporaryDirectory(prefix="edgewatch-soak-") as tmp:
        env = {k: v for k, v in os.environ.items() if k not in ("STATE_DIRECTORY", "CONFIGURATION_DIRECTORY", "RUNTIME_DIRECTORY", "NOTIFY_SOCKET")}
        cmd = [sys.executable, "-m", "runtime.cli", "run", "--as-fast-as-possible", "--state-dir", str(Path(tmp) / "state"),
               "--config", str(_config(Path(tmp), args))]
        daemon = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=open(Path(tmp) / "daemon.log", "w"))
        proc = psutil.Process(daemon.pid)
        samples: list[tuple[float, float]] = []
        t0 = time.monotonic()
        next_line = 60.0
        print(f"soak: {' '.join(cmd[2:])} for {seconds / 60:.0f} min; RSS every {SAMPLE_S:g} s", file=sys.stderr)
        try:
            while (t := time.monotonic() - t0) < seconds:
                if daemon.poll() is not None:
                    raise CommandError(f"the daemon exited ({daemon.returncode}): {(Path(tmp) / 'daemon.log').read_text()[-500:]}")
                rss = proc.memory_info().rss / 2**20
                samples.append((t, rss))
                if t >= next_line:
                    next_line += 60.0
                    inferred = _inferred(Path(tmp) / "state")
                    print(f"{t / 60:5.0f} min  RSS {rss:7.1f} MB  inferred {inferred}", flush=True)
                time.sleep(SAMPLE_S)
        finally:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(20)
            except subprocess.TimeoutExpired:
                daemon.kill()
        inferred = _inferred(Path(tmp) / "state")
    late = [s for s in samples if s[0] >= max(WARMUP_S, seconds / 2)]
    result = {
        "seconds": round(seconds), "inferred": inferred, "fps": round(inferred / seconds, 2) if inferred else None,
        "rss_first_mb": round(samples[0][1], 1), "rss_at_10min_mb": round(_at(samples, WARMUP_S), 1),
        "rss_last_mb": round(samples[-1][1], 1), "rss_max_mb": round(max(r for _, r in samples), 1),
        "slope_last_half_mb_per_h": round(slope_mb_per_h(late), 3) if len(late) >= 2 else None,
        "target_mb_per_h": 1.0,
    }
    print(json.dumps(result) if args.json else
          f"soak {seconds / 60:.0f} min, {inferred} frames inferred ({result['fps']} fps): RSS {result['rss_first_mb']} MB at start, "
          f"{result['rss_at_10min_mb']} MB at 10 min, {result['rss_last_mb']} MB at the end (max {result['rss_max_mb']}); "
          f"growth over the last half {result['slope_last_half_mb_per_h']} MB/h (target < 1 MB/h)")
    if args.plot:
        _plot(samples, result, Path(args.plot))
    return 0


def _config(folder: Path, args: argparse.Namespace) -> Path:
    from .. import paths

    model = Path(args.model).resolve() if args.model else paths.BUNDLED_MODEL
    video = Path(args.input).resolve() if args.input else paths.BUNDLED_VIDEO
    path = folder / "soak.toml"
    path.write_text(f'[camera]\nsource = "{video}"\nloop = true\nas_fast_as_possible = true\n[model]\npath = "{model}"\n'
                    '[events]\njournal = false\n')
    return path


def _inferred(state: Path) -> int:
    try:
        return int(json.loads((state / "status.json").read_text())["frames"]["inferred"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def _at(samples: list[tuple[float, float]], t: float) -> float:
    return min(samples, key=lambda s: abs(s[0] - t))[1]


def _plot(samples: list[tuple[float, float]], result: dict, out: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CommandError("--plot needs matplotlib (pip install matplotlib; a workstation package)") from None
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.plot([t / 60 for t, _ in samples], [r for _, r in samples], lw=1)
    ax.axvline(WARMUP_S / 60, color="grey", ls=":", lw=1)
    ax.set_xlabel("minutes")
    ax.set_ylabel("daemon RSS (MB)")
    ax.set_title(f"edgewatch run at full speed: {result['slope_last_half_mb_per_h']} MB/h over the last half")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"plot: {out}", file=sys.stderr)
