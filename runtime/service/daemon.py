"""`edgewatch run`: the daemon's life from start to exit.

The main thread owns signals, sd_notify and status.json; the pipeline runs on its own threads
and the resource monitor on another. SIGTERM/SIGINT: stop capture, end open events, flush the
log, exit 0 (within 5 s). SIGHUP: reload config and model; the new model is loaded and tested on
a real frame first, and on any failure the running config and model stay and the failure is
logged. READY=1 follows the first successful inference; WATCHDOG=1 is sent only while the
pipeline's own heartbeat is fresh, so a stuck inference gets the service restarted.

After the first detection the board surveys the bundle it serves (board_survey.py): what each
variant costs here and which thread count serves best, once per board and bundle (cached in the
state folder); a restart starts straight at the thread count measured best, with the ladder
ordered by this board's figures.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Callable

from .. import config as config_mod
from .. import exitcodes, heap, status_file
from .. import paths as state_paths
from ..bundle import MANIFEST, find_manifest, load_manifest
from ..config import Budgets, Config
from ..errors import one_line
from ..events.database import EventLogError
from ..events.journal_only import JournalOnlyLog
from ..events.model import Retention
from ..events.writer import EventLog
from ..health import PipelineHealth
from ..interpreter import default_threads
from ..monitor import board_costs
from ..monitor.monitor import ResourceMonitor, choose_variant
from ..pipeline import Pipeline
from ..pipeline.gating import load_motion_mask
from ..pipeline.loader import load_and_test
from ..pipeline.pipeline import model_health
from ..state_lock import StateLock
from ..web.routes import DaemonView
from ..web.server import WebServer
from .board_survey import BoardSurvey, cached
from .notify import Notifier, WatchdogFeeder
from .wakeup import Wakeup

log = logging.getLogger("edgewatch.daemon")

STATUS_INTERVAL_S = 1.0
HEAP_TRIM_INTERVAL_S = 30.0  # see runtime/heap.py
STALL_S = 5.0  # no inference for this long (beyond the rate limit) while a camera streams: degraded
SHUTDOWN_BUDGET_S = 4.0  # within systemd's stop timeout, and under the 5 s a clean stop is allowed
ADOPT_TIMEOUT_S = 10.0  # a reloaded model not in service by then: the reload is reported failed


class Daemon:
    def __init__(self, config_path: Path | None, state_dir: Path, *, duration: float | None = None,
                 overrides: Callable[[Config], Config] = lambda c: c):
        self.config_path = config_path
        self.state_dir = Path(state_dir)
        self.duration = duration
        self.overrides = overrides
        self.notifier = Notifier()
        self.started = time.time()
        self.last_error: str | None = None
        self.last_reload: dict | None = None  # {at, ok, error}: what `activate` waits on after its SIGHUP
        self.exit_code = exitcodes.OK
        self._wake = Wakeup()  # what signal handlers set: they take no lock (see wakeup.py)
        self._stop = threading.Event()
        self._stop_signal: int | None = None
        self._reload = False
        self._status_failing = False
        self.monitor: ResourceMonitor | None = None
        self._monitor_thread: threading.Thread | None = None
        self.survey: BoardSurvey | None = None
        self.board: dict | None = None  # this board's identity, for its measurements
        self.board_costs: board_costs.BoardCosts | None = None  # what the serving bundle costs here, when measured
        self.left_busy = False  # an inference was still running at exit: leave without tearing it down
        self.web: WebServer | None = None
        self._last_status: dict | None = None  # what status.json holds: the page reads it too

    def load_config(self) -> Config:
        return self.overrides(config_mod.load(self.config_path))

    # -- signals ------------------------------------------------------------------------------------

    def _on_stop(self, signum, _frame) -> None:
        # Flags and a byte only: the main loop logs and stops (a handler may run while it holds a lock).
        self._stop_signal = signum
        self._wake.set()

    def _on_hup(self, _signum, _frame) -> None:
        self._reload = True
        self._wake.set()

    # -- start, loop, stop --------------------------------------------------------------------------

    def run(self) -> int:
        # First of all, so a SIGTERM during start-up (model loading) still means a clean stop.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hup)
        # The state is the service's and its group's (folders 0750, files 0640), as systemd's
        # UMask=0027 makes it, also when the daemon is started by hand.
        os.umask(os.umask(0o027) | 0o027)
        self.config = self.load_config()  # a bad config at start is the caller's error (exit 2)
        load_motion_mask(self.config.motion, self.config.origin)  # and so is a bad motion mask
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._lock = StateLock(self.state_dir).acquire()  # StateLocked: exit 2, naming the holder
        self.status_path = status_file.publish_location(self.state_dir)
        self.board = board_costs.board_identity()
        self.board_costs = self._cached_costs(self.config)
        detector = load_and_test(self.config.model, variant=self._variant_for(self.config, self.board_costs),
                                 threads=self._threads_for(self.config, self.board_costs),
                                 low_score=self.config.low_score)  # so is a model that cannot serve
        ev = self.config.events
        try:
            self.events = EventLog(self.state_dir / state_paths.EVENTS_DB, self.state_dir / state_paths.SNAPSHOTS,
                                   Retention(ev.max_age_days, int(ev.max_mb * 2**20)), ev.batch_seconds,
                                   journal_lines=ev.journal)
        except EventLogError as exc:  # a full or read-only card must not stop detection
            log.error("%s; events go to the journal only", exc)
            self.last_error = str(exc)
            self.events = JournalOnlyLog(str(exc), journal_lines=ev.journal)
        self.pipeline = Pipeline(self.config, detector, self.events)
        self._set_budgets(self.config.budget)
        self.pipeline.start()
        self._start_web(self.config.web)
        log.info("running %s (%s) on %s; state in %s", detector.bundle.name, detector.variant.name,
                 self.config.camera.source, self.state_dir)
        self.events.record_system("started", f"edgewatch started ({self.config.origin})",
                                  {"pid": os.getpid(), "model": model_health(detector).as_dict(), "source": self.config.camera.source})
        try:
            self._loop()
        finally:
            self._shutdown()
        return self.exit_code

    def _loop(self) -> None:
        t0 = time.monotonic()
        ready = False
        next_status = 0.0
        next_trim = t0 + HEAP_TRIM_INTERVAL_S
        feeder = WatchdogFeeder(self.notifier.watchdog_s) if self.notifier.watchdog_s else None
        while not self._stop.is_set():
            self._wake.wait(0.2)
            if self._stop_signal is not None:
                log.info("%s: stopping", signal.Signals(self._stop_signal).name)
                break
            now = time.monotonic()
            if self._reload:
                self._reload = False
                self.reload()
            health = self.pipeline.health()
            if not ready and health.ready:
                ready = True
                self._publish(None, health)  # status.json says it before READY=1 does: readers may check at once
                next_status = now + STATUS_INTERVAL_S
                self.notifier.ready(self._status_line(self.status(None, health)))
                log.info("first inference done: ready")
                self._start_survey()
            if feeder is not None and feeder.due(now, health.heartbeat):
                self.notifier.watchdog()
            if now >= next_status:
                next_status = now + STATUS_INTERVAL_S
                self._publish("starting" if not ready else None, health)
            if now >= next_trim:
                next_trim = now + HEAP_TRIM_INTERVAL_S
                heap.trim()
            if not health.alive:
                log.critical("the inference thread has stopped; exiting so the service restarts")
                self.exit_code = exitcodes.FAILURE
                break
            if self.duration is not None and now - t0 >= self.duration:
                log.info("--duration %.1f s reached: stopping", self.duration)
                break
            if health.finished:
                log.info("the source ended: stopping")
                break

    def _shutdown(self) -> None:
        deadline = time.monotonic() + SHUTDOWN_BUDGET_S
        self.notifier.stopping()
        self._publish("stopping")
        self._stop.set()
        if self.survey is not None:
            self.survey.stop(0.5)
        self._stop_web()
        if self._monitor_thread is not None:
            self._monitor_thread.join(1.0)
        try:
            self.left_busy = not self.pipeline.stop(timeout=max(0.5, min(2.0, deadline - time.monotonic())))
        finally:  # whatever stopping the pipeline did, what is queued gets written
            self.events.close(timeout=max(0.5, deadline - time.monotonic()))
        self._publish("stopping")
        self.notifier.close()
        self._wake.close()
        self._lock.release()
        log.info("stopped")

    # -- SIGHUP ---------------------------------------------------------------------------------------

    def reload(self) -> bool:
        """Reload config and model; all or nothing. True when the new ones are in service."""
        self.notifier.reloading()
        old = self.config
        serving = self.pipeline.detector
        try:
            config = self.load_config()
            known = self._cached_costs(config)
            detector = load_and_test(config.model, variant=self._variant_for(config, known), threads=self._threads_for(config, known),
                                     frame=self.pipeline.test_frame(), low_score=config.low_score)
            if not self.pipeline.reconfigure(config, detector, timeout=ADOPT_TIMEOUT_S):
                raise TimeoutError(f"the new model was not in service within {ADOPT_TIMEOUT_S:g} s")
        except Exception as exc:  # noqa: BLE001 - any failure keeps the running config and model
            message = f"reload failed, still running {serving.bundle.name} ({old.origin}): {one_line(exc)}"
            log.error("%s", message)
            self.last_error = message
            self.last_reload = {"at": round(time.time(), 3), "ok": False, "error": message}
            self.events.record_system("reload_failed", message, {"error": one_line(exc), "config": old.origin})
            self.notifier.ready()
            return False
        if config.events != old.events:
            log.warning("[events] changes take effect at the next restart")
        self.config = config
        self.last_error = None
        self.last_reload = {"at": round(time.time(), 3), "ok": True, "error": None}
        if _bundle_folder(detector.options.model) != _bundle_folder(serving.options.model):  # another bundle: survey it
            if self.survey is not None:
                self.survey.stop(0.5)
                self.survey = None
            self.board_costs = known
            self._start_survey()
        try:
            # After the swap, so the monitor reads the new detector's variants and knobs.
            self._set_budgets(config.budget, reloaded_from=serving)
        except Exception as exc:  # noqa: BLE001 - the new model serves; only the budgets are off
            log.error("resource monitor not reloaded: %s", one_line(exc))
            self.last_error = f"resource monitor: {one_line(exc)}"
        if config.web != old.web:
            self._stop_web()
            self._start_web(config.web)
        message = f"reloaded: {detector.bundle.name} ({detector.variant.name}) from {config.origin}"
        log.info("%s", message)
        self.events.record_system("reload", message, {"model": model_health(detector).as_dict(), "config": config.origin})
        self.notifier.ready()
        return True

    # -- the resource monitor ---------------------------------------------------------------------------

    def _variant_for(self, config: Config, known: board_costs.BoardCosts | None) -> str | None:
        """Under budgets, the variant to start on, chosen before anything is loaded: the config's,
        else the top of the ladder (the most accurate that fits the memory budget, by this board's
        footprints when it has measured them)."""
        budgets, model = config.budget, config.model
        if budgets is None:
            return model.variant
        manifest = find_manifest(model.path)
        if manifest is None or not manifest.is_file():
            return model.variant  # a bare .tflite has one variant
        variant, why = choose_variant(load_manifest(manifest), budgets, model.variant, known)
        log.info("variant %s: %s", variant, why)
        return variant

    def _threads_for(self, config: Config, known: board_costs.BoardCosts | None) -> int | None:
        """The config's thread count, else the one measured to serve best on this board, else all cores."""
        return config.model.threads or (known.best_threads() if known is not None else None)

    def _cached_costs(self, config: Config) -> board_costs.BoardCosts | None:
        folder = _bundle_folder(config.model.path)
        return cached(self.state_dir, folder, self.board) if folder is not None and self.board is not None else None

    def _start_survey(self) -> None:
        """Measure the serving bundle on this board, in the background, once (see board_survey.py)."""
        folder = _bundle_folder(self.pipeline.detector.options.model)
        if folder is None or self.board is None:
            return
        self.survey = BoardSurvey(
            self.state_dir, self.pipeline, bundle=folder, board=self.board, known=self.board_costs,
            threads=list(range(1, default_threads() + 1)), pin_threads=self.config.model.threads is not None,
            may_run=self._budget_allows_measuring, on_costs=self._measured_costs, on_threads=self._measured_threads)
        self.survey.start()

    def _budget_allows_measuring(self) -> bool:
        monitor = self.monitor
        return monitor is None or monitor.status().get("state") == "free"

    def _measured_costs(self, costs: board_costs.BoardCosts) -> None:
        self.board_costs = costs
        if self.monitor is not None:
            self.monitor.set_board_costs(costs)

    def _measured_threads(self, threads: int, why: str) -> None:
        if self.monitor is not None:
            self.monitor.use_threads(threads, why)
        elif threads != self.pipeline.health().model.threads:
            self.pipeline.set_threads(threads)
            self.events.record_system("threads", f"threads -> {threads}: {why}", {"threads": threads, "why": why})

    def _set_budgets(self, budgets: Budgets | None, reloaded_from=None) -> None:
        """Start, reload or stop the resource monitor for `budgets` (None: no budgets). On a reload
        (`reloaded_from`: the detector that served before) a running monitor keeps what it learned."""
        detector = self.pipeline.detector
        if budgets is None:
            if self.monitor is not None:
                self.monitor = None  # the monitor thread sees it and ends
                # and nothing it turned may stay turned: no budget, no throttling
                self.pipeline.set_paused(False)
                self.pipeline.set_rate_limit(None)
            return
        if self.monitor is not None:
            same = reloaded_from is not None and reloaded_from.sha256 == detector.sha256
            self.monitor.reload(budgets, variants=detector.bundle.variants, same_bundle=same, board_costs=self.board_costs)
            return
        self.monitor = ResourceMonitor(budgets, self.pipeline, self.events.record_system,
                                       variants=detector.bundle.variants, board_costs=self.board_costs,
                                       max_threads=self._threads_for(self.config, self.board_costs) or default_threads(),
                                       on_hard_limit=self._hard_limit)
        self._monitor_thread = threading.Thread(target=self._monitor_loop, args=(self.monitor,),
                                                name="edgewatch-monitor", daemon=True)
        self._monitor_thread.start()

    def _hard_limit(self, reason: str) -> None:
        # Called on the monitor thread: the main thread does the stopping, then exits 75 so
        # systemd restarts the service clean.
        log.critical("hard memory budget breached (%s): exiting with code %d", reason, exitcodes.MEMORY_HARD_LIMIT)
        self.exit_code = exitcodes.MEMORY_HARD_LIMIT
        self._stop.set()
        self._wake.set()

    def _monitor_loop(self, monitor: ResourceMonitor) -> None:
        last_logged = float("-inf")
        while not self._stop.is_set() and self.monitor is monitor:
            try:
                monitor.tick()
            except Exception:  # noqa: BLE001 - a failing sensor must not stop the daemon
                if time.monotonic() - last_logged > 60:
                    last_logged = time.monotonic()
                    log.exception("resource monitor tick failed")
            self._stop.wait(1.0)

    # -- the local page --------------------------------------------------------------------------------

    def _start_web(self, web) -> None:
        """Serve the page; a port that cannot be had is logged, never a reason to stop detecting."""
        if not web.enabled:
            return
        view = DaemonView(status=lambda: self._last_status, health=self.pipeline.health, feed=self.pipeline.live,
                          events_db=self.state_dir / state_paths.EVENTS_DB, snapshots_dir=self.state_dir / state_paths.SNAPSHOTS)
        server = WebServer(view, host=web.host, port=web.port, token=web.token, max_viewers=web.max_viewers,
                           live_fps=web.live_fps, live_width=web.live_width, timeout_s=web.timeout_s)
        try:
            server.start()
        except OSError as exc:
            message = f"web page not started: cannot listen on {web.host}:{web.port} ({exc.strerror or exc})"
            log.error("%s", message)
            self.last_error = message
            return
        self.web = server

    def _stop_web(self) -> None:
        if self.web is not None:
            self.web.stop()
            self.web = None

    # -- status -----------------------------------------------------------------------------------------

    def _state(self, h: PipelineHealth) -> str:
        if h.paused:
            return "paused"
        stall = STALL_S + (1.0 / h.rate_limit if h.rate_limit else 0.0)
        if h.motion is not None and h.motion.enabled:
            stall += self.config.motion.keepalive_s  # nothing moving: one inference per keep-alive is normal
        if h.source.state != "streaming" or h.since_inference_s is None or h.since_inference_s > stall:
            return "degraded"
        # An event log that cannot write (a full disk) is reported (`storage`), not "unhealthy":
        # detection goes on, the log resumes by itself, and a rollout may still proceed.
        return "running"

    def status(self, state: str | None = None, health: PipelineHealth | None = None) -> dict:
        """status.json: the pipeline's health, the event log's counts and the monitor's state."""
        h = health or self.pipeline.health()
        state = state or self._state(h)
        ev = self.events.stats
        src = h.source
        return {
            "pid": os.getpid(),
            "started": round(self.started, 3),
            "updated": round(time.time(), 3),
            "state": state,
            "healthy": state in ("running", "paused"),
            "model": h.model.as_dict(),
            "fps": h.fps,
            "frames": {"captured": h.frames.captured, "inferred": h.frames.inferred,
                       "dropped": h.frames.dropped, "errors": h.frames.errors},
            "events": {"written": ev.get("written", 0), "dropped": ev.get("dropped", 0),
                       "pending": ev.get("pending", 0), "open": h.open_events},
            "storage": ev.get("failing") or ev.get("snapshots_paused") or "ok",
            "budget": self.monitor.status() if self.monitor is not None else {},
            "survey": self.survey.status() if self.survey is not None else None,
            "last_error": self.last_error or h.last_error or ev.get("failing")
            or (src.last_error if src.state != "streaming" else None),
            "source": {"name": src.name, "state": src.state, "describe": src.description, "losses": src.losses},
            "frame_age_ms": {"p50": h.frame_age_ms[0], "p95": h.frame_age_ms[1]},
            "invoke_ms": h.invoke_ms,
            "rate_limit_fps": h.rate_limit,
            "motion": h.motion.as_dict() if h.motion is not None else None,
            "config": self.config.origin,
            "reload": self.last_reload,
            "web": self.web.info() if self.web is not None else None,
        }

    def _status_line(self, s: dict) -> str:
        f = s["frames"]
        m = s.get("motion") or {}
        gate = (f", motion {m['motion_share']:.0%}, duty {m['inference_duty']:.0%}"
                if m.get("enabled") and m.get("motion_share") is not None else "")
        return (f"{s['state']}: {s['fps']:.1f} fps, {f['inferred']} inferred, {f['dropped']} dropped{gate}, "
                f"{s['events']['written']} events, camera {s['source']['state']}")

    def _publish(self, state: str | None, health: PipelineHealth | None = None) -> None:
        try:
            status = self.status(state, health)
        except Exception:  # noqa: BLE001
            log.exception("building the status failed")
            return
        self._last_status = status
        self.notifier.status(self._status_line(status))
        try:
            status_file.write(self.status_path, status)
        except OSError as exc:  # a full disk: keep running, say so once
            if not self._status_failing:
                log.warning("cannot write %s: %s", self.status_path, exc)
            self._status_failing = True
        else:
            self._status_failing = False


def _bundle_folder(model_path: Path) -> Path | None:
    """The bundle folder a model path names (a folder, or its model.json); None for a bare .tflite."""
    path = Path(model_path).resolve()
    folder = path if path.is_dir() else path.parent if path.suffix == ".json" else None
    return folder if folder is not None and (folder / MANIFEST).is_file() else None
