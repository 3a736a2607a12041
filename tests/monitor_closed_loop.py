"""The real closed loop: `edgewatch run` on a bundle and vtest.avi, power estimated from the daemon's
own CPU use (`power_scope = "process"`, Pi 4 profile), first with a budget that never binds, then
with the budget at half of what it drew unconstrained. Prints the figures (a benchmark, not a test):

    python tests/monitor_closed_loop.py [--bundle runtime/assets/person-ssdlite] [--seconds 90]

tests/test_monitor_daemon.py runs it shorter and checks the loop holds the budget.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere: `runtime` is the repo's
VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


@dataclass
class Sample:
    t: float  # seconds since the daemon started
    power_w: float | None
    fps: float | None
    rss_mb: float | None
    knobs: dict
    decisions: int
    cpu_ms_per_tick: float | None


@dataclass
class Run:
    samples: list[Sample]
    exit_code: int
    status: dict  # the last status.json
    stderr: str

    def window(self, last_s: float) -> list[Sample]:
        end = self.samples[-1].t
        return [s for s in self.samples if s.t > end - last_s]

    def mean_power(self, last_s: float) -> float:
        values = [s.power_w for s in self.window(last_s) if s.power_w is not None]
        return sum(values) / len(values)

    def mean_fps(self, last_s: float) -> float:
        values = [s.fps for s in self.window(last_s) if s.fps is not None]
        return sum(values) / len(values)


def run_daemon(bundle: Path, state_dir: Path, budget: str, seconds: float, video: Path = VTEST, model: str = "") -> Run:
    """`edgewatch run` for `seconds` with a [budget] section (and `model` lines for [model]);
    status.json sampled once a second."""
    state_dir.mkdir(parents=True, exist_ok=True)
    config = state_dir / "config.toml"
    config.write_text(
        f'[camera]\nsource = "{video}"\nname = "vtest"\nloop = true\n\n'
        f'[model]\npath = "{bundle}"\n{model}\n'
        f"[events]\njournal = false\n\n"
        f"[budget]\n{budget}\n"
    )
    status_path = state_dir / "status.json"
    status_path.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "runtime.cli", "run", "--config", str(config), "--state-dir", str(state_dir), "--duration", str(seconds)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    samples: list[Sample] = []
    status: dict = {}
    start = time.monotonic()
    last_update = None
    while proc.poll() is None:
        time.sleep(1.0)
        try:
            status = json.loads(status_path.read_text())
        except (OSError, ValueError):
            continue
        if status.get("updated") == last_update:
            continue
        last_update = status.get("updated")
        b = status.get("budget") or {}
        if not b.get("power"):
            continue
        samples.append(Sample(
            t=time.monotonic() - start,
            power_w=b["power"].get("now_w"),
            fps=status.get("fps"),
            rss_mb=(b.get("memory") or {}).get("rss_mb"),
            knobs=b.get("knobs") or {},
            decisions=b.get("decisions") or 0,
            cpu_ms_per_tick=b.get("monitor_cpu_ms_per_tick"),
        ))
    _, stderr = proc.communicate(timeout=30)
    return Run(samples, proc.returncode, status, stderr)


BUDGET = 'power_scope = "process"\nboard = "pi-4b"\npower_window_s = {window}\ntemperature_c = false\npower_w = {watts}\n'


def closed_loop(bundle: Path, work: Path, seconds: float, reference_s: float, window_s: float = 10.0) -> dict:
    free = run_daemon(bundle, work / "free", BUDGET.format(window=window_s, watts=1000), reference_s)
    settle = reference_s / 2
    unconstrained_w = free.mean_power(reference_s - settle)
    budget_w = round(unconstrained_w / 2, 3)
    held = run_daemon(bundle, work / "held", BUDGET.format(window=window_s, watts=budget_w), seconds)
    last = min(30.0, seconds / 2)
    mean_w = held.mean_power(last)
    ticks = [s.cpu_ms_per_tick for s in held.samples if s.cpu_ms_per_tick is not None]
    return {
        "bundle": str(bundle),
        "unconstrained_w": round(unconstrained_w, 3),
        "unconstrained_fps": round(free.mean_fps(reference_s - settle), 2),
        "budget_w": budget_w,
        "mean_w_last_s": last,
        "mean_w": round(mean_w, 3),
        "mean_over_budget": round(mean_w / budget_w, 3),
        "fps": round(held.mean_fps(last), 2),
        "knobs": held.status.get("budget", {}).get("knobs"),
        "decisions": held.samples[-1].decisions if held.samples else 0,
        "last_decision": (held.status.get("budget", {}).get("last_decision") or {}).get("message"),
        "monitor_cpu_ms_per_tick": ticks[-1] if ticks else None,
        "exit_codes": [free.exit_code, held.exit_code],
        "power_source": held.status.get("budget", {}).get("power", {}).get("source"),
        "_runs": (free, held),
    }


def footprint_bundle(bundle: Path, work: Path, seconds: float) -> tuple[Path, dict[str, float]]:
    """A copy of `bundle` whose variants carry `peak_rss_mb` measured here: the daemon's peak RSS
    running each variant on vtest.avi (what the converter's report should record), with float32
    as the default so a budget has something to step away from."""
    copy = work / "bundle"
    shutil.copytree(bundle, copy, dirs_exist_ok=True)
    manifest = json.loads((copy / "model.json").read_text())
    peaks = {}
    for v in manifest["variants"]:
        run = run_daemon(copy, work / f"rss-{v['name']}", "temperature_c = false", seconds, model=f'variant = "{v["name"]}"')
        peaks[v["name"]] = max(s.rss_mb for s in run.samples if s.rss_mb is not None)
        v.setdefault("metrics", {})["peak_rss_mb"] = round(peaks[v["name"]], 1)
    if any(v["name"] == "float32" for v in manifest["variants"]):
        manifest["default_variant"] = "float32"
    (copy / "model.json").write_text(json.dumps(manifest, indent=1))
    return copy, peaks


def memory_loop(bundle: Path, work: Path, seconds: float, measure_s: float = 15.0) -> dict:
    """A memory budget between the int8 and float32 footprints: the variant chosen at load, and the
    daemon's RSS under the budget for `seconds`."""
    from runtime.bundle import load_manifest
    from runtime.config import Budgets
    from runtime.monitor.monitor import choose_variant

    copy, peaks = footprint_bundle(bundle, work, measure_s)
    smallest = min(peaks.values())
    budget_mb = round((smallest + peaks["float32"]) / 2, 1)
    budgets = Budgets(memory_mb=budget_mb, temperature_c=None)
    variant, why = choose_variant(load_manifest(copy / "model.json"), budgets)
    run = run_daemon(copy, work / "held-memory", f"memory_mb = {budget_mb}\ntemperature_c = false", seconds, model=f'variant = "{variant}"')
    rss = [s.rss_mb for s in run.samples if s.rss_mb is not None]
    return {
        "peak_rss_mb": peaks,
        "memory_budget_mb": budget_mb,
        "chosen": variant,
        "why": why,
        "rss_max_mb": max(rss),
        "rss_last_mb": rss[-1],
        "memory_state": run.status.get("budget", {}).get("memory", {}).get("state"),
        "decisions": run.samples[-1].decisions if run.samples else 0,
        "knobs_turned": _knobs_turned(work / "held-memory"),
        "exit_code": run.exit_code,
    }


def _knobs_turned(state_dir: Path) -> list[str]:
    """The knobs the budget turned, from the run's own event log."""
    with sqlite3.connect(state_dir / "events.db") as conn:
        kinds = [k for (k,) in conn.execute("SELECT kind FROM system_events WHERE kind LIKE 'budget.%' ORDER BY id")]
    return [k.removeprefix("budget.") for k in kinds if k.removeprefix("budget.") in ("rate_limit", "threads", "variant", "paused", "shed_caches")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=REPO / "runtime" / "assets" / "person-ssdlite")
    parser.add_argument("--seconds", type=float, default=90.0, help="the run under the budget")
    parser.add_argument("--reference", type=float, default=40.0, help="the unconstrained run")
    parser.add_argument("--work", type=Path, default=Path("/tmp/edgewatch-closed-loop"))
    parser.add_argument("--memory", action="store_true", help="the memory budget instead: footprints, choice, RSS")
    args = parser.parse_args()
    if args.memory:
        figures = memory_loop(args.bundle.resolve(), args.work, args.seconds)
        print(json.dumps(figures, indent=1))
        return figures["exit_code"]
    figures = closed_loop(args.bundle.resolve(), args.work, args.seconds, args.reference)
    free, held = figures.pop("_runs")
    for s in held.samples:
        print(f"t={s.t:5.1f}s power {s.power_w if s.power_w is None else round(s.power_w, 3)} W fps {s.fps} "
              f"rate {s.knobs.get('rate_limit')} threads {s.knobs.get('threads')} variant {s.knobs.get('variant')}", file=sys.stderr)
    print(json.dumps(figures, indent=1))
    return 0 if all(code == 0 for code in figures["exit_codes"]) else 1


if __name__ == "__main__":
    sys.exit(main())
