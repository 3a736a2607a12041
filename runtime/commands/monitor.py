"""`edgewatch monitor`: the board's live figures, and the daemon's budget state, for a person over ssh.

One plain line per interval (no curses: it must survive `ssh board edgewatch monitor | tee`), or
with --json one JSON object per line for scripts. The figures are read here, from the same
sensors the daemon uses; the budget state (limits, knobs, last decision) comes from the daemon's
status.json when it is running.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from ..errors import CommandError
from ..exitcodes import BAD_INPUT, FAILURE, OK
from .arguments import number
from ..paths import STATUS, require_readable, state_dir



def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", default="/", help="filesystem root to read sensors under (default: /)")
    parser.add_argument("--interval", type=number(gt=0, le=86_400), default=2.0, metavar="S", help="seconds between lines (default: 2)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--once", action="store_true", help="print one reading and exit")
    parser.add_argument("--count", type=number(integer=True, ge=0, le=100_000_000), default=0, metavar="N",
                        help="stop after N lines (default: run until interrupted)")
    parser.add_argument("--state-dir", type=Path, default=None, help="the daemon's state folder (default: as the daemon chooses)")
    parser.add_argument("--vcgencmd", default=None, metavar="PATH", help="vcgencmd to run (default: <root>/usr/bin/vcgencmd, else PATH)")
    parser.add_argument("--board", default="auto", help="power profile for the estimate when there is no meter (default: from the device tree)")
    parser.add_argument("--bench", type=number(gt=0, le=86_400), default=None, metavar="S",
                        help="measure the monitor's own cost instead: S seconds of ticks at 1 Hz (sensors + controller), CPU per tick")


def run(args: argparse.Namespace) -> int:
    from ..monitor.readings import BoardSensors
    from ..monitor.sensors.power.estimate import PROFILES

    if not Path(args.root).is_dir():
        raise CommandError(f"--root: {args.root}: not a folder", BAD_INPUT)
    if args.board != "auto" and args.board not in PROFILES:
        raise CommandError(f"--board: {args.board!r} is not one of auto, {', '.join(PROFILES)}", BAD_INPUT)
    status_path = state_dir(args.state_dir) / STATUS
    try:
        require_readable(status_path)  # the daemon's half of the figures: say now if it cannot be read
    except PermissionError as exc:
        raise CommandError(str(exc), FAILURE) from None
    sensors = BoardSensors(args.root, board=args.board, vcgencmd=args.vcgencmd)
    if args.bench is not None:
        return _bench(sensors, args.bench, args.json)
    sensors.read(time.monotonic())  # counters (CPU, RAPL) need a first read to give a figure on the next
    lines = 1 if args.once else args.count
    shown = 0
    try:
        while True:
            time.sleep(min(args.interval, 1.0) if shown == 0 else args.interval)
            figures = sensors.read(time.monotonic()).as_dict()
            budget = _daemon_budget(status_path)
            if args.json:
                print(json.dumps({"time": time.time(), "board": sensors.model, **figures, "daemon": budget}), flush=True)
            else:
                print(_line(figures, budget), flush=True)
            shown += 1
            if lines and shown >= lines:
                return OK
    except KeyboardInterrupt:
        return OK


def _bench(sensors: Any, seconds: float, as_json: bool) -> int:
    """What ResourceMonitor.tick costs on this board: every sensor read and a controller step, at
    1 Hz as the daemon runs it, in CPU time (this process, and vcgencmd's processes separately)."""
    import os

    from ..config import Budgets
    from ..monitor.controller import Controller, Knobs, Observation

    if seconds < 2:
        raise CommandError(f"--bench: at least 2 seconds, got {seconds:g}", BAD_INPUT)
    # Budgets that never bind: the controller does its arithmetic every tick without acting.
    controller = Controller(Budgets(memory_mb=1e9, power_w=1e9), [], Knobs(None, 1, "default"), 1)
    ticks = int(seconds)
    sensor_s = control_s = 0.0
    start_wall, start, start_cpu = time.monotonic(), os.times(), time.process_time()
    for i in range(ticks):
        t0 = time.process_time()
        readings = sensors.read(time.monotonic())
        t1 = time.process_time()
        hot = readings.hottest
        power = readings.power.watts if readings.power else None
        controller.step(Observation(time.monotonic(), power, hot.celsius if hot else None, fps=10.0, rss_mb=readings.process.rss_mb))
        sensor_s += t1 - t0
        control_s += time.process_time() - t1
        time.sleep(max(0.0, start_wall + i + 1 - time.monotonic()))
    end, wall, own = os.times(), time.monotonic() - start_wall, time.process_time() - start_cpu
    children = (end.children_user + end.children_system) - (start.children_user + start.children_system)
    result = {
        "ticks": ticks,
        "wall_s": round(wall, 2),
        "cpu_ms_per_tick": round(1000 * own / ticks, 3),
        "sensors_ms_per_tick": round(1000 * sensor_s / ticks, 3),
        "controller_ms_per_tick": round(1000 * control_s / ticks, 3),
        "vcgencmd_ms_per_tick": round(1000 * children / ticks, 3),
        "share_of_one_core_percent": round(100 * (own + children) / wall, 3),
        "power_source": sensors.power_source.source,
    }
    if as_json:
        print(json.dumps(result))
    else:
        print(f"monitor overhead over {ticks} ticks at 1 Hz ({result['power_source']}): "
              f"{result['cpu_ms_per_tick']:.3f} ms CPU per tick (sensors {result['sensors_ms_per_tick']:.3f}, "
              f"controller {result['controller_ms_per_tick']:.3f}, vcgencmd {result['vcgencmd_ms_per_tick']:.3f}) "
              f"= {result['share_of_one_core_percent']:.3f}% of one core")
    return OK


def _daemon_budget(path: Path) -> dict[str, Any] | None:
    from .. import status_file

    try:
        status = status_file.read(path)
    except (OSError, ValueError):
        return None
    if not status_file.is_fresh(status):
        return None
    return {"state": status.get("state"), "fps": status.get("fps"), "budget": status.get("budget") or {},
            "motion": status.get("motion")}


def _f(value: float | None, fmt: str, unit: str) -> str:
    return "-" if value is None else f"{value:{fmt}}{unit}"


def _line(fig: dict[str, Any], daemon: dict[str, Any] | None) -> str:
    p, m, t = fig["power"], fig["memory"], fig["temperature"]
    parts = [time.strftime("%H:%M:%S")]
    parts.append(f"power {_f(p['now_w'], '.2f', ' W')} (mean {_f(p['mean_w'], '.2f', ' W')}/{p['window_s']:g}s) [{p['source']}]")
    parts.append(f"temp {_f(t['c'], '.1f', ' C')}" + (f" [{t['source']}]" if t["source"] else ""))
    freqs = fig["cpufreq"]
    if freqs:
        parts.append("cpu " + "/".join(f"{q['cur_mhz']:.0f}" for q in freqs) + " MHz")
    mem = f"mem avail {_f(m['available_mb'], '.0f', ' MB')}"
    psi = (m.get("psi") or {}).get("some")
    if psi:
        mem += f" psi {psi.get('avg10', 0):.2f}%"
    cg = m.get("cgroup")
    if cg and cg.get("current_mb") is not None:
        high = _f(cg['high_mb'], '.0f', '') if cg['high_mb'] else 'max'
        mem += f" cgroup {cg['current_mb']:.0f} MB (high {high}, max {_f(cg['max_mb'], '.0f', '') if cg['max_mb'] else 'max'})"
    parts.append(mem)
    th = fig.get("throttling")
    if th is not None:
        parts.append("throttled: " + (",".join(th["now"]) or "no") + (f" (since boot: {','.join(th['since_boot'])})" if th["since_boot"] else ""))
    parts.append(_budget_text(daemon))
    return " | ".join(parts)


def _budget_text(daemon: dict[str, Any] | None) -> str:
    if daemon is None:
        return "daemon: not running"
    b = daemon["budget"]
    knobs = b.get("knobs") or {}
    bits = [f"daemon {daemon.get('state')} {_f(daemon.get('fps'), '.1f', ' fps')}"]
    motion = daemon.get("motion") or {}
    if motion.get("enabled"):
        bits.append(f"motion {_f(motion.get('motion_share'), '.0%', '')} duty {_f(motion.get('inference_duty'), '.0%', '')}")
    power = b.get("power") or {}
    if power.get("budget_w") is not None:
        bits.append(f"power {_f(power.get('mean_w'), '.2f', '')}/{power['budget_w']:g} W {power.get('state', '')}")
    memory = b.get("memory") or {}
    if memory.get("budget_mb") is not None:
        bits.append(f"rss {_f(memory.get('rss_mb'), '.0f', '')}/{memory['budget_mb']:g} MB {memory.get('state', '')}")
    temp = b.get("temperature") or {}
    if temp.get("budget_c") is not None and temp.get("c") is not None:
        bits.append(f"temp {temp['c']:.1f}/{temp['budget_c']:g} C")
    if knobs:
        rate = knobs.get("rate_limit")
        bits.append(f"knobs rate {'-' if rate is None else f'{rate:g}'} threads {knobs.get('threads')} variant {knobs.get('variant')}"
                    + (" PAUSED" if knobs.get("paused") else ""))
    last = b.get("last_decision")
    if last:
        bits.append(f"last: {last.get('message')}")
    return "budget: " + ", ".join(bits)
