"""`edgewatch bench --ladder`: what the ladder buys under a power budget, in one run.

The real daemon (`edgewatch run`, a child process) plays the video once (or looped for `--seconds`), paced at its own rate,
with power estimated from its own CPU use (`power_scope = "process"`, the Raspberry Pi 4 profile):

1. this board's costs of every variant are measured first (monitor/board_costs.py; also the
   pipeline's rate per thread count when nothing is cached), so every run starts from them;
2. unconstrained, on the most accurate variant: the reference draw, frame rate and events;
3. under power budgets of (by default) 100 %, 60 % and 35 % of that draw, twice each: with the
   ladder, and with rate-only control (`ladder = false`).

Per run: the mean power against the budget (after the first `--settle` seconds, and over the whole
run), the inference rate, the variants used and the time in each, and event recall against the
reference run: a reference event is found when an event of the run overlaps it in video time and
their boxes overlap with IoU >= 0.3. Then the ladder's table: per variant, its input size, the
latency and CPU per invoke measured here, and its fidelity (mAP@0.5 against the source model at
full resolution on held-out frames, from the conversion report). Targets: at 35 % the ladder gives
>= 2x the frame rate of rate-only control and a higher recall, its mean power within +-10 % of
the budget; at 100 % it runs the most accurate variant. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .. import exitcodes, paths
from ..bundle import find_manifest, load_manifest
from ..bundle_digest import bundle_digest
from ..detections import box_iou
from ..errors import CommandError
from ..interpreter import default_threads
from ..monitor import board_costs
from ..monitor.variants import most_accurate, variant_infos

DEFAULT_BUDGETS = (100, 60, 35)
MATCH_IOU = 0.3
BUDGET = ('power_scope = "process"\nboard = "pi-4b"\npower_window_s = {window}\ntemperature_c = false\n'
          "power_w = {watts}\nmin_fps = {min_fps}\nladder = {ladder}\n")


@dataclass
class Run:
    name: str
    budget_w: float | None
    samples: list[dict] = field(default_factory=list)  # per status.json update: t, power_w, fps, variant, rate_limit
    events: list[tuple[float, float, tuple[float, ...]]] = field(default_factory=list)  # video-time start, end, box
    exit_code: int = 0
    decisions: list[str] = field(default_factory=list)

    def after(self, settle_s: float) -> list[dict]:
        return [s for s in self.samples if s["t"] >= settle_s] or self.samples

    def mean(self, key: str, settle_s: float = 0.0) -> float | None:
        values = [s[key] for s in self.after(settle_s) if s.get(key) is not None]
        return float(np.mean(values)) if values else None

    def variant_time(self) -> dict[str, float]:
        """Seconds in each variant (from the status samples, a second apart)."""
        out: dict[str, float] = {}
        for a, b in zip(self.samples, self.samples[1:]):
            out[a["variant"]] = out.get(a["variant"], 0.0) + (b["t"] - a["t"])
        return out


def _config(work: Path, video: str, bundle: Path, threads: int, budget: str | None, variant: str | None, loop: bool) -> Path:
    cfg = work / "config.toml"
    lines = [f'[camera]\nsource = {json.dumps(video)}\nname = "bench"\nloop = {str(loop).lower()}\n',
             f"[model]\npath = {json.dumps(str(bundle))}\nthreads = {threads}\n"
             + (f"variant = {json.dumps(variant)}\n" if variant else ""),
             "[events]\njournal = false\n"]
    if budget is not None:
        lines.append(f"[budget]\n{budget}")
    cfg.write_text("\n".join(lines))
    return cfg


def _daemon(name: str, work: Path, video: str, bundle: Path, threads: int, costs_dir: Path, budget: str | None,
            budget_w: float | None, variant: str | None, say, seconds: float | None = None) -> Run:
    """One daemon on the whole video (it stops when the video ends), or on the video looped for
    `seconds`; status.json sampled each second."""
    state = work / name
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    shutil.copytree(costs_dir, state / board_costs.COSTS)  # this board's figures: no survey during the run
    cfg = _config(state, video, bundle, threads, budget, variant, loop=seconds is not None)
    duration = ["--duration", f"{seconds:g}"] if seconds is not None else []
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    proc = subprocess.Popen([sys.executable, "-m", "runtime.cli", "run", "--config", str(cfg), "--state-dir", str(state), *duration],
                            cwd=Path(__file__).resolve().parents[2], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    run = Run(name, budget_w)
    status_path = state / paths.STATUS
    start = None
    last = None
    while proc.poll() is None:
        time.sleep(0.5)
        try:
            status = json.loads(status_path.read_text())
        except (OSError, ValueError):
            continue
        if status.get("updated") == last or status.get("state") == "starting":
            continue
        last = status.get("updated")
        start = start or status.get("started")
        budget_state = status.get("budget") or {}
        run.samples.append({"t": status["updated"] - start, "fps": status.get("fps"),
                            "power_w": (budget_state.get("power") or {}).get("now_w"),
                            "variant": status["model"]["variant"], "rate_limit": status.get("rate_limit_fps")})
    run.exit_code = proc.wait()
    run.events, run.decisions = _events(state, start or 0.0)
    say(f"  {name}: {len(run.samples)} s sampled, {len(run.events)} events, exit {run.exit_code}")
    return run


def _events(state: Path, started: float) -> tuple[list, list[str]]:
    """Events as (start, end, box) in seconds since the daemon started (the video's clock, paced),
    and the budget decisions' messages."""
    conn = sqlite3.connect(f"file:{state / paths.EVENTS_DB}?mode=ro", uri=True)
    try:
        rows = conn.execute('SELECT start, "end", box FROM events ORDER BY start').fetchall()
        first = conn.execute("SELECT MIN(time) FROM system_events WHERE kind = 'started'").fetchone()
        decisions = [r[0] for r in conn.execute(
            "SELECT message FROM system_events WHERE kind LIKE 'budget.%' ORDER BY time").fetchall()]
    except sqlite3.Error:
        rows, first, decisions = [], (None,), []
    finally:
        conn.close()
    t0 = first[0] if first and first[0] is not None else started
    events = [(s - t0, (e if e is not None else s) - t0, tuple(json.loads(b))) for s, e, b in rows]
    return events, decisions


def recall(reference: list, found: list, iou: float = MATCH_IOU) -> tuple[float | None, int]:
    """Share of reference events matched one-to-one by an event overlapping it in time with box IoU >= iou."""
    if not reference:
        return None, 0
    taken = set()
    matched = 0
    for rs, re, rbox in reference:
        best, best_overlap = None, 0.0
        for j, (s, e, box) in enumerate(found):
            if j in taken:
                continue
            overlap = min(re, e) - max(rs, s)
            if overlap < 0 or box_iou(np.array([rbox], np.float32), np.array([box], np.float32))[0, 0] < iou:
                continue
            if best is None or overlap > best_overlap:
                best, best_overlap = j, overlap
        if best is not None:
            taken.add(best)
            matched += 1
    return matched / len(reference), matched


def _measure_costs(bundle: Path, work: Path, video: str, threads: list[int], runs: int, say) -> tuple[Path, board_costs.BoardCosts]:
    """This board's figures for the bundle, from the state folder's cache or measured now."""
    board = board_costs.board_identity()
    digest = bundle_digest(bundle)
    state = paths.state_dir(None)
    costs = board_costs.load(state, digest, board) or board_costs.BoardCosts(digest, board)
    variants = [v.name for v in load_manifest(bundle / "model.json").variants]
    if not costs.complete(variants):
        say(f"measuring {len(variants)} variant(s) here at {threads} thread(s), each in a fresh process")
        board_costs.measure_bundle(bundle, variants, threads, board, runs=runs, nice=0, known=costs,
                                   on_variant=lambda n, f: say(f"  {n}: {f}"))
    if not costs.pipeline:
        from ..detector import Detector, DetectorOptions
        from .pipeline import _compare, pipeline_figures

        say(f"measuring the pipeline at {threads} thread(s)")
        cap = cv2.VideoCapture(video)
        ok, frame = cap.read()
        cap.release()
        rows = [_compare(Detector.create_from_options(DetectorOptions(model=bundle, threads=n)), frame, video, str(bundle), n, 6.0,
                         work / f"pipeline{n}") for n in threads]
        costs.pipeline = pipeline_figures(rows, "edgewatch bench --ladder")
    board_costs.save(work, costs)
    return work / board_costs.COSTS, costs


def _ladder_table(bundle: Path, costs: board_costs.BoardCosts, threads: int) -> list[dict]:
    b = load_manifest(bundle / "model.json")
    rows = []
    for v in b.variants:
        spec = b.input_for(v)
        fid = (v.metrics.get("fidelity") or {}).get("value")
        rows.append({"variant": v.name, "input": f"{spec.width}x{spec.height}", "size_mb": round(v.file.stat().st_size / 1e6, 2),
                     "shares_file": v.file.name, "latency_ms": costs.latency_ms(v.name, threads), "cpu_ms": costs.cost_ms(v.name, threads),
                     "peak_rss_mb": costs.peak_rss_mb(v.name), "fidelity": fid})
    return rows


def run_ladder_bench(args: argparse.Namespace) -> int:
    bundle = Path(args.model).resolve() if args.model else paths.BUNDLED_MODEL
    manifest = find_manifest(bundle)
    if manifest is None or not manifest.is_file():
        raise CommandError(f"{bundle}: --ladder needs a bundle folder with variants")
    bundle = manifest.parent
    video = str(Path(args.input).resolve()) if args.input else str(paths.BUNDLED_VIDEO)
    try:
        percents = [float(p) for p in (args.budgets or ",".join(map(str, DEFAULT_BUDGETS))).split(",")]
    except ValueError:
        raise CommandError(f"--budgets: expected comma-separated percentages, got {args.budgets!r}") from None
    cap = cv2.VideoCapture(video)
    source_fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    cap.release()
    min_fps = args.min_fps if args.min_fps else round(0.8 * source_fps, 2)
    settle = args.settle
    window = 10
    say = (lambda *a: None) if args.json else print
    with tempfile.TemporaryDirectory(prefix="edgewatch-ladder-") as tmp:
        work = Path(tmp)
        counts = list(range(1, default_threads() + 1))
        costs_dir, costs = _measure_costs(bundle, work, video, counts, min(args.runs, 30), say)
        threads = costs.best_threads() or counts[-1]
        b = load_manifest(bundle / "model.json")
        infos = variant_infos(b.variants, (b.input.width, b.input.height), costs, threads)
        top = most_accurate(infos).name
        say(f"threads {threads} (the best pipeline rate here); most accurate variant {top}; min_fps {min_fps:g} "
            f"(the rate the application needs; the video gives {source_fps:g})")
        free = _daemon("unconstrained", work, video, bundle, threads, costs_dir,
                       BUDGET.format(window=window, watts=1000, min_fps=min_fps, ladder="false"), None, top, say, args.seconds)
        draw = free.mean("power_w", settle)
        if not draw:
            raise CommandError("the unconstrained run reported no power figures", exitcodes.FAILURE)
        say(f"unconstrained on {top}: {draw:.3f} W estimated, {free.mean('fps', settle):.2f} fps, {len(free.events)} events")
        runs = []
        for pct in percents:
            watts = round(draw * pct / 100, 4)
            for ladder in (True, False):
                name = f"{pct:g}% {'ladder' if ladder else 'rate-only'}"
                # both start on the most accurate variant: rate-only control keeps it, the ladder may leave it
                run = _daemon(name.replace("%", "pct").replace(" ", "-"), work, video, bundle, threads, costs_dir,
                              BUDGET.format(window=window, watts=watts, min_fps=min_fps, ladder=str(ladder).lower()),
                              watts, None if ladder else top, say, args.seconds)
                run.name = name
                runs.append((pct, ladder, run))
        table = _ladder_table(bundle, costs, threads)

    results = {"measure": "ladder", "bundle": str(bundle), "video": video, "threads": threads, "min_fps": min_fps,
               "settle_s": settle, "reference": {"variant": top, "power_w": round(draw, 4), "fps": _r(free.mean("fps", settle)),
                                                  "events": len(free.events)}, "runs": [], "ladder": table}
    for pct, ladder, run in runs:
        rec, matched = recall(free.events, run.events)
        mean_settled, mean_all = run.mean("power_w", settle), run.mean("power_w")
        results["runs"].append({
            "budget_pct": pct, "ladder": ladder, "budget_w": run.budget_w, "mean_power_w": _r(mean_settled),
            "mean_over_budget": _r(mean_settled / run.budget_w if mean_settled else None), "mean_power_all_w": _r(mean_all),
            "fps": _r(run.mean("fps", settle)), "fps_all": _r(run.mean("fps")),
            "variants_s": {k: round(v, 1) for k, v in run.variant_time().items()}, "events": len(run.events),
            "recall": _r(rec), "matched": matched, "decisions": len(run.decisions), "exit_code": run.exit_code,
        })
    results["targets"] = _targets(results)
    if args.json:
        print(json.dumps(results))
    else:
        _print(results)
    return exitcodes.OK


def _targets(results: dict) -> dict:
    by = {(r["budget_pct"], r["ladder"]): r for r in results["runs"]}
    out = {}
    low = min(r["budget_pct"] for r in results["runs"])
    lad, rate = by.get((low, True)), by.get((low, False))
    if lad and rate:
        out[f"{low:g}%: ladder fps >= 2x rate-only"] = bool(lad["fps"] and rate["fps"] and lad["fps"] >= 2 * rate["fps"])
        out[f"{low:g}%: ladder recall > rate-only"] = bool(lad["recall"] is not None and rate["recall"] is not None and lad["recall"] > rate["recall"])
        out[f"{low:g}%: ladder mean power within 10% of the budget"] = bool(lad["mean_over_budget"] and abs(lad["mean_over_budget"] - 1) <= 0.10)
    full = by.get((100.0, True))
    if full:
        top = results["reference"]["variant"]
        share = full["variants_s"].get(top, 0.0) / max(sum(full["variants_s"].values()), 1e-9)
        out["100%: ladder runs the most accurate variant"] = share >= 0.95
    return out


def _print(results: dict) -> None:
    ref = results["reference"]
    print(f"\nreference: {ref['variant']} unconstrained, {ref['power_w']:.3f} W, {ref['fps']} fps, {ref['events']} events "
          f"(power and fps means after the first {results['settle_s']:g} s; min_fps {results['min_fps']:g}; {results['threads']} thread(s))")
    print(f"{'run':<16} {'budget W':>8} {'mean W':>7} {'x budget':>8} {'(all)':>7} {'fps':>6} {'events':>6} {'recall':>6}  variants (s)")
    for r in results["runs"]:
        name = f"{r['budget_pct']:g}% {'ladder' if r['ladder'] else 'rate-only'}"
        variants = ", ".join(f"{k} {v:.0f}" for k, v in sorted(r["variants_s"].items(), key=lambda kv: -kv[1]))
        print(f"{name:<16} {r['budget_w']:>8.3f} {r['mean_power_w'] or 0:>7.3f} {r['mean_over_budget'] or 0:>8.2f} "
              f"{r['mean_power_all_w'] or 0:>7.3f} {r['fps'] or 0:>6.2f} {r['events']:>6} {r['recall'] if r['recall'] is not None else '-':>6}  {variants}")
    print(f"\n{'variant':<18} {'input':>9} {'file MB':>7} {'ms here':>7} {'CPU ms':>7} {'RSS MB':>6} {'fidelity':>8}")
    for t in results["ladder"]:
        print(f"{t['variant']:<18} {t['input']:>9} {t['size_mb']:>7.2f} {t['latency_ms'] or 0:>7.2f} {t['cpu_ms'] or 0:>7.2f} "
              f"{t['peak_rss_mb'] or 0:>6.0f} {t['fidelity'] if t['fidelity'] is not None else '-':>8}")
    print()
    for name, ok in results["targets"].items():
        print(f"target {name}: {'met' if ok else 'MISSED'}")


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)
