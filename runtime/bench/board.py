"""`edgewatch bench [BUNDLE] --save`: every variant of a bundle measured on this board, by hand, and
kept where the daemon looks for it (the state folder's `costs/<digest>.json`, monitor/board_costs.py).

Each variant runs in a fresh process (its peak RSS is its own) at each thread count; the table shows
latency and CPU per invoke, peak RSS, the converter's fidelity and the converter's latency beside
it, and the ladder the daemon will step along with these figures: the variants by falling
fidelity, leaving out any that another beats on both fidelity and cost here.
"""

from __future__ import annotations

import argparse
import json

from .. import exitcodes, paths
from ..bundle import find_manifest, load_manifest
from ..bundle_digest import bundle_digest
from ..errors import CommandError
from ..interpreter import default_threads
from ..monitor import board_costs
from ..monitor.variants import most_accurate, step_down_order, variant_infos


def run_board_bench(args: argparse.Namespace, model: str, threads: list[int] | None) -> int:
    manifest = find_manifest(model)
    if manifest is None or not manifest.is_file():
        raise CommandError(f"{model}: --save measures a bundle's variants: give a bundle folder or its model.json")
    bundle = load_manifest(manifest)
    folder = manifest.parent
    state = paths.state_dir(args.state_dir)
    board = board_costs.board_identity()
    digest = bundle_digest(folder)
    known = board_costs.load(state, digest, board)
    costs = board_costs.BoardCosts(digest, board, {}, known.pipeline if known else {})
    counts = threads or list(range(1, default_threads() + 1))
    say = (lambda *a: None) if args.json else print
    say(f"measuring {len(bundle.variants)} variant(s) of {folder} at {counts} thread(s), each in a fresh process, {args.runs} runs")

    def measured(name: str, figures: dict) -> None:
        say(f"  {name}: " + ", ".join(f"{t} thr {f['latency_ms']:.1f} ms ({f['cpu_ms']:.1f} CPU)" for t, f in figures["threads"].items())
            + f", peak RSS {figures['peak_rss_mb']:.0f} MB")

    try:
        board_costs.measure_bundle(folder, [v.name for v in bundle.variants], counts, board, runs=args.runs, nice=0,
                                   known=costs, on_variant=measured)
    except RuntimeError as exc:
        raise CommandError(str(exc), exitcodes.FAILURE) from None
    path = board_costs.save(state, costs)
    threads_now = costs.best_threads() or counts[-1]
    infos = variant_infos(bundle.variants, (bundle.input.width, bundle.input.height), costs, threads_now)
    top = most_accurate(infos)
    ladder = [v.name for v in step_down_order(infos, top.name)]
    if args.json:
        print(json.dumps({"measure": "board", "cache": str(path), **costs.as_dict(), "ladder": ladder, "threads": threads_now}))
        return exitcodes.OK
    print(f"\n{'variant':<18} {'input':>9} {'thr':>3} {'ms p50':>7} {'CPU ms':>7} {'RSS MB':>6} {'fidelity':>8} {'bundle ms':>9}")
    for v in bundle.variants:
        figures = costs.variants[v.name]
        size = bundle.input_for(v)
        fid = (v.metrics.get("fidelity") or {}).get("value")
        for t, f in figures["threads"].items():
            print(f"{v.name:<18} {size.width:>4}x{size.height:<4} {t:>3} {f['latency_ms']:>7.2f} {f['cpu_ms']:>7.2f} "
                  f"{figures['peak_rss_mb']:>6.0f} {fid if fid is not None else '-':>8} {v.metrics.get('latency_ms', '-'):>9}")
    print(f"\nladder on this board at {threads_now} thread(s), most accurate first: {' > '.join(ladder)}")
    print(f"saved {path}: the daemon orders its ladder by these figures from its next start or reload")
    return exitcodes.OK
