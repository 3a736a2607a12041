"""The board's survey of the bundle it serves: what each variant costs here, and which thread count
serves best, measured in the background after the daemon's first detection and kept per board and
bundle digest in the state folder (monitor/board_costs.py), so it happens once.

Two parts, each skipped when the cache already has it:
- variant costs: every variant in a fresh `edgewatch bench` process at a lower priority (latency
  and CPU per invoke at each thread count, peak RSS); the resource monitor then orders its ladder
  by them instead of the converter's workstation figures;
- threads: the daemon's own pipeline, on the real source, run for a while at each thread count
  (unless the config pins `model.threads`): the most inferences per second, or, where the source
  caps every setting at its own rate, the least CPU per inference. The pipeline then stays at the
  best one.

Neither runs while a budget is tight (the monitor limiting anything): measuring then would take
what the budget does not have. The survey waits, and gives up only when the daemon stops.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable

import psutil

from ..bundle import find_manifest, load_manifest
from ..bundle_digest import DigestError, bundle_digest, is_digest
from ..errors import one_line
from ..monitor import board_costs
from ..monitor.board_costs import BoardCosts

log = logging.getLogger("edgewatch.survey")

TRIAL_SETTLE_S = 3.0  # after a thread change: the swap, and the rate's 5 s mean moving over
TRIAL_S = 8.0  # measured per thread count


def identify(bundle: Path) -> str | None:
    """The bundle's digest: its folder's name when a rollout named it so, else computed."""
    bundle = Path(bundle)
    if is_digest(bundle.name):
        return bundle.name
    try:
        return bundle_digest(bundle)
    except (DigestError, OSError) as exc:
        log.warning("%s: no digest, so no board measurements are kept for it (%s)", bundle, exc)
        return None


def cached(state_dir: Path, bundle: Path, board: dict[str, Any]) -> BoardCosts | None:
    """This board's figures for `bundle` when it has measured it before (cheap when it has not)."""
    if not board_costs.any_cached(state_dir):
        return None
    digest = identify(bundle)
    return board_costs.load(state_dir, digest, board) if digest else None


class BoardSurvey:
    """Runs once in its own thread: `start()`; `status()` for status.json; `stop()` on shutdown."""

    def __init__(self, state_dir: Path, pipeline: Any, *, bundle: Path, board: dict[str, Any], known: BoardCosts | None,
                 threads: list[int], pin_threads: bool, may_run: Callable[[], bool],
                 on_costs: Callable[[BoardCosts], None], on_threads: Callable[[int, str], None]):
        self.state_dir = Path(state_dir)
        self.pipeline = pipeline
        self.bundle = Path(bundle)
        self.board = board
        self.costs = known
        self.threads = threads
        self.pin_threads = pin_threads
        self.may_run = may_run
        self.on_costs = on_costs
        self.on_threads = on_threads
        self.state = "waiting"
        self.error: str | None = None
        self.chosen: tuple[int, str] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edgewatch-survey", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def status(self) -> dict[str, Any]:
        costs = self.costs
        return {
            "state": self.state,
            "costs": "board" if costs is not None and costs.variants else "bundle",
            "variants_measured": sorted(costs.variants) if costs is not None else [],
            "threads": ({"chosen": self.chosen[0], "why": self.chosen[1]} if self.chosen else None),
            "cache": str(board_costs.cache_path(self.state_dir, costs.digest)) if costs is not None else None,
            "error": self.error,
        }

    # -- the survey thread -------------------------------------------------------------------------

    def _wait_until_allowed(self) -> bool:
        while not self.may_run():
            self.state = "waiting (budget tight)"
            if self._stop.wait(5.0):
                return False
        return not self._stop.is_set()

    def _run(self) -> None:
        try:
            self._survey()
        except Exception as exc:  # noqa: BLE001 - a failed measurement leaves the bundle's figures in use
            self.error = one_line(exc)
            self.state = "failed"
            log.warning("board survey failed: %s; the ladder keeps the bundle's figures", self.error)

    def _survey(self) -> None:
        if self.costs is None:
            digest = identify(self.bundle)
            if digest is None:
                self.state = "off (no digest)"
                return
            self.costs = BoardCosts(digest, self.board)
        manifest = find_manifest(self.bundle)
        variants = [v.name for v in load_manifest(manifest).variants]
        if not self.pin_threads and not self.costs.pipeline:
            if not self._wait_until_allowed():
                return
            self.state = "measuring threads"
            self._thread_trial()
            board_costs.save(self.state_dir, self.costs)
        best = self.costs.best_threads()
        if best is not None and not self.pin_threads:
            why = self._why(best)
            self.chosen = (best, why)
            self.on_threads(best, why)
        if not self.costs.complete(variants):
            if not self._wait_until_allowed():
                return
            self.state = "measuring variants"
            threads = sorted(set(self.threads) | ({best} if best else set()))

            def measured(name: str, figures: dict) -> None:
                log.info("measured %s here: %s", name, figures)
                board_costs.save(self.state_dir, self.costs)

            board_costs.measure_bundle(self.bundle, variants, threads, self.board, known=self.costs, stop=self._stop,
                                       may_run=self.may_run, on_variant=measured)
            if not self.costs.complete(variants):
                self.state = "stopped" if self._stop.is_set() else "incomplete (the budget tightened): the bundle's figures stay in use"
                return
        self.on_costs(self.costs)
        self.state = "done"

    def _why(self, best: int) -> str:
        figures = ", ".join(f"{t} thread(s) {p['fps']:.1f} fps, {p.get('cpu_ms_per_frame') or 0:.1f} ms CPU/frame"
                            for t, p in sorted(self.costs.pipeline.items(), key=lambda tp: int(tp[0])))
        how = next(iter(self.costs.pipeline.values())).get("how", "")
        return f"best pipeline setting measured here ({how}): {figures}"

    def _thread_trial(self) -> None:
        """The pipeline at each thread count, on the real source: frames inferred and CPU per frame."""
        proc = psutil.Process()
        serving = self.pipeline.health().model
        for n in self.threads:
            if self._stop.is_set() or not self.may_run():
                return
            self.pipeline.set_threads(n)
            if self._stop.wait(TRIAL_SETTLE_S):
                return
            h0, c0, t0 = self.pipeline.health(), sum(proc.cpu_times()[:2]), time.monotonic()
            if self._stop.wait(TRIAL_S):
                return
            h1, c1, t1 = self.pipeline.health(), sum(proc.cpu_times()[:2]), time.monotonic()
            if h1.model.threads != n:
                log.warning("thread trial: %d thread(s) did not take (serving %d)", n, h1.model.threads)
                continue
            inferred = h1.frames.inferred - h0.frames.inferred
            captured = h1.frames.captured - h0.frames.captured
            self.costs.pipeline[str(n)] = {
                "fps": round(inferred / (t1 - t0), 2),
                "source_fps": round(captured / (t1 - t0), 2),
                "cpu_ms_per_frame": round(1000 * (c1 - c0) / max(inferred, 1), 2),
                "variant": h1.model.variant,
                "how": "the daemon's own pipeline on its source",
            }
            log.info("thread trial: %d thread(s): %s", n, self.costs.pipeline[str(n)])
        self.pipeline.set_threads(serving.threads)
