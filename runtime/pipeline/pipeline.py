"""The pipeline: capture -> latest-frame slot -> one inference at a time -> filters -> tracker ->
events. It is also the resource monitor's actuator (docs/DESIGN.md, "Resource monitor"), and
reports on itself through one typed snapshot, `health()` (runtime/health.py).

A prepare thread takes the newest frame, shows it to the motion gate (gating.py: the model sees
frames with motion, a few while tracks are alive, and a keep-alive otherwise) and preprocesses
the ones that pass while the model is still invoking on the previous one; the inference thread takes that prepared input, invokes, decodes and turns
the result into events. The prepare thread stays at most one frame ahead, so at most one
inference is in flight, one is prepared, and a slow model drops frames (counted) instead of
queueing them. Each result is timed against its frame's capture time. Nothing may end these
threads: a bad frame, a failed write or a model error is counted, logged and survived. Their
heartbeats are what feed the systemd watchdog.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from dataclasses import dataclass, field, replace

import numpy as np
import psutil

from ..detections import label_for
from ..detector import Detector
from .. import heap
from ..config import CameraConfig, Config
from ..errors import one_line
from ..events.model import Event
from ..health import FrameCounts, ModelHealth, PipelineHealth, SourceHealth
from ..motion.gate import UNGATED, Decision
from ..motion.regions import detect_in
from ..preprocess import Transform
from ..sources import Frame, source_factory
from ..sources.capture import Capture
from ..sources.slot import LatestSlot
from ..tracking import Track, Tracker, TrackerParams, TrackUpdate
from . import snapshot
from .filters import DetectionFilter, Zones
from .gating import FrameGate
from .live import LiveFeed
from .loader import load_and_test
from .stats import PipelineStats

log = logging.getLogger("edgewatch.pipeline")

ERROR_LOG_INTERVAL_S = 10.0  # a model failing on every frame logs once per interval, not per frame
# Frames held for snapshots not yet written. Past this many distinct frames, the oldest are
# written early: a crowded scene must not cost a frame per person in memory.
MAX_HELD_FRAMES = 3


@dataclass(frozen=True)
class _Prepared:
    """A frame preprocessed for `detector` (the one in service when it was prepared), or, with
    `crops`, a frame to run the model on crop by crop (regions around motion)."""

    frame: Frame
    detector: Detector
    tensor: np.ndarray | None
    transform: Transform | None
    crops: list[tuple[int, int, int, int]] | None = None


@dataclass
class _Media:
    """Per open event: the best frame not yet written as a snapshot, when it was last written,
    whether its row has news (path, zones, stationary) to write, and the zones it entered."""

    best: Frame | None = None
    box: np.ndarray | None = None
    score: float = 0.0
    written: float = float("-inf")
    dirty: bool = False
    zones: list[str] = field(default_factory=list)  # entered, in order
    inside: tuple[str, ...] = ()  # the zones it was in when last seen


def tracker_params(config: Config) -> TrackerParams:
    t = config.tracker
    return TrackerParams(iou=t.iou, min_hits=t.min_hits, max_missed_s=t.max_missed_s, min_score=config.detect.min_score,
                         low_score=config.low_score, stationary_after_s=t.stationary_after_s,
                         stationary_max_missed_s=t.stationary_max_missed_s, trajectory_interval_s=t.trajectory_interval_s)


class Pipeline:
    def __init__(self, config: Config, detector: Detector, events):
        """`events`: an EventLog (upsert, record_system, stats); capture losses and recoveries go
        to its record_system too. Raises SchemaError for a motion mask that cannot be used."""
        self.config = config
        self.gate = FrameGate(config.motion, config.origin)
        self.events = events
        self.slot: LatestSlot[Frame] = LatestSlot()
        self._prepared: LatestSlot[_Prepared] = LatestSlot()
        self._buffers: tuple[Detector, list[np.ndarray]] | None = None  # two input tensors, used in turn
        self.stats = PipelineStats()
        self.live = LiveFeed()  # filled only while someone watches (the web page's live view)
        self.tracker = Tracker(tracker_params(config))
        self.detector = detector
        self.filter = DetectionFilter(config.detect, detector.labels, config.low_score)
        self.zones = Zones(config.detect)
        self.capture = self._make_capture(config.camera)
        self._beats = {"prepare": time.monotonic(), "inference": time.monotonic()}
        self.first_inference = threading.Event()
        self.paused = False
        self.budget_fps: float | None = None
        self._media: dict[str, _Media] = {}
        # A reloaded config and/or a tested detector, for the inference thread to adopt between frames.
        self._pending_lock = threading.Lock()
        self._pending_config: Config | None = None
        self._pending_detector: Detector | None = None
        self._pending_gate: FrameGate | None = None
        self._adopted = threading.Condition(self._pending_lock)  # notified when the pending ones are in service
        self._last_frame: Frame | None = None
        self._last_error_log = float("-inf")
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._prepare_loop, name="edgewatch-prepare", daemon=True),
                         threading.Thread(target=self._run, name="edgewatch-inference", daemon=True)]
        self._proc = psutil.Process()
        self._cpu_sample = (time.monotonic(), sum(self._proc.cpu_times()[:2]), 0.0)

    # -- lifecycle --------------------------------------------------------------------------------

    def _make_capture(self, camera: CameraConfig) -> Capture:
        return Capture(source_factory(camera), self.slot, open_timeout_s=camera.open_timeout_s,
                       read_timeout_s=camera.read_timeout_s, backoff_min_s=camera.reconnect_min_s,
                       backoff_max_s=camera.reconnect_max_s, on_event=self.events.record_system)

    def start(self) -> None:
        self.capture.start()
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 3.0) -> bool:
        """Stop capture, let the current inference finish, end every open event, all within `timeout`.
        False when an inference was still running at the end: the process must then not tear down
        the interpreter under it (see `edgewatch run`)."""
        deadline = time.monotonic() + timeout
        self.capture.stop(timeout=min(timeout / 2, 2.0))
        self._stop.set()
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in self._threads):
            # The inference thread still owns the tracker: ending events here would race it.
            log.warning("inference still busy after %.1f s; open events end unrecorded", timeout)
            return False
        self.close_events()
        return True

    def close_events(self) -> None:
        """End every open event now: at shutdown, and at the end of a replay (`process`)."""
        self._dispatch(self.tracker.close_all(), None)

    @property
    def alive(self) -> bool:
        return all(t.is_alive() for t in self._threads)

    @property
    def heartbeat(self) -> float:
        """When the less recent of the two threads last went round its loop."""
        return min(self._beats.values())

    # -- the inference thread -----------------------------------------------------------------------

    @property
    def rate_limit(self) -> float | None:
        limits = [r for r in (self.config.detect.max_fps, self.budget_fps) if r]
        return min(limits) if limits else None

    def _prepare_loop(self) -> None:
        next_due = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            self._beats["prepare"] = now
            try:
                rate = self.rate_limit
                if self.paused or (rate and now < next_due):
                    # Frames left in the slot are overwritten and counted as dropped (a recording
                    # read as fast as possible just waits). After a rate-limit wait the newest
                    # frame is taken: never one taken early and left to age.
                    self._stop.wait(0.25 if self.paused else min(next_due - now, 0.25))
                    continue
                if not self._prepared.wait_empty(0.25):  # one frame ahead of the model, no more
                    continue
                frame = self.slot.take(0.25)
                if frame is None:
                    continue
                item = self._admit(frame)
                if item is None:  # gated out (only a frame that reaches the model counts against the rate)
                    continue
                next_due = time.monotonic() + 1.0 / rate if rate else 0.0
                self._prepared.put(item)
            except Exception as exc:  # noqa: BLE001 - the loop must outlive anything one frame does
                self._failed(f"pipeline error: {one_line(exc)}", exc_info=True)

    def _admit(self, frame: Frame) -> _Prepared | None:
        """The motion gate's verdict on `frame`: None when the model is not to see it, else the
        frame prepared for the model (whole, or as crops around motion)."""
        gate = self.gate
        try:
            decision, motion = gate.decide(frame, len(self.tracker.tracks))
        except Exception as exc:  # noqa: BLE001 - a frame the motion stage failed on still reaches the model
            self._failed(f"motion failed on frame {frame.seq}: {one_line(exc)}")
            decision, motion = Decision(True, UNGATED), None
        if not decision.infer:
            return None
        crops = gate.crops(frame, motion, [t.box for t in self.tracker.tracks], self.detector.model.input_size)
        if crops is not None:
            return _Prepared(frame, self.detector, None, None, crops)
        return self._prepare(frame)

    def process(self, frame: Frame) -> bool:
        """One frame through the gate, the model, the tracker and the event log, on the caller's
        thread, timed by the frame's own capture time: for replaying a recording at its own pace
        (tests, tools). Never while the pipeline's threads run. True when the model saw the frame."""
        item = self._admit(frame)
        if item is None:
            self._dispatch(self.tracker.expire(frame.monotonic), None)
            return False
        self._infer(item)
        self._write_pending(frame.monotonic)
        return True

    def _prepare(self, frame: Frame) -> _Prepared | None:
        detector = self.detector
        if self._buffers is None or self._buffers[0] is not detector:
            shape, dtype = detector.model.input.shape, detector.model.input.dtype
            self._buffers = (detector, [np.empty(shape, dtype), np.empty(shape, dtype)])
        buffers = self._buffers[1]
        buffers.reverse()  # the other buffer: the model may still be reading the last one
        try:
            tensor, transform = detector.preprocessor(frame.image, out=buffers[0])
        except Exception as exc:  # noqa: BLE001 - one bad frame is survived
            self._failed(f"preprocessing failed on frame {frame.seq}: {one_line(exc)}")
            return None
        return _Prepared(frame, detector, tensor, transform)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._beats["inference"] = time.monotonic()
            try:
                if self._pending_config is not None or self._pending_detector is not None:
                    self._apply_pending()
                item = self._prepared.take(0.25)
                if item is None:
                    self._dispatch(self.tracker.expire(time.monotonic()), None)
                else:
                    self._infer(item)
                self._write_pending(time.monotonic())
            except Exception as exc:  # noqa: BLE001 - the loop must outlive anything one frame does
                self._failed(f"pipeline error: {one_line(exc)}", exc_info=True)

    def _failed(self, message: str, exc_info: bool = False) -> None:
        self.stats.error(message)
        now = time.monotonic()
        if now - self._last_error_log >= ERROR_LOG_INTERVAL_S:
            self._last_error_log = now
            log.error("%s (%d errors so far)", message, self.stats.errors, exc_info=exc_info)

    def _infer(self, item: _Prepared) -> None:
        detector, frame = self.detector, item.frame
        try:
            if item.crops is not None:
                det, invoke_ms = detect_in(detector, frame.image, item.crops)
            else:
                if item.detector is detector:
                    tensor, transform = item.tensor, item.transform
                else:  # prepared for the model just replaced
                    tensor, transform = detector.preprocessor(frame.image)
                det = transform.to_source(detector.infer(tensor))
                invoke_ms = detector.timings.invoke_ms
        except Exception as exc:  # noqa: BLE001 - one bad frame (or a failing model) is survived
            self._failed(f"inference failed on frame {frame.seq}: {one_line(exc)}")
            return
        done = time.monotonic()
        self.stats.inference(done, done - frame.monotonic, invoke_ms)
        self._last_frame = frame
        self.first_inference.set()
        h, w = frame.image.shape[:2]
        kept = self.filter(det, w, h)
        updates = self.tracker.update(kept, frame.monotonic, frame.wall, (w, h))
        self._dispatch(updates, frame)
        self._note_sightings(frame, w, h)
        self.live.publish(frame, kept, self.tracker.tracks, detector.labels)

    # -- what the pipeline reports ------------------------------------------------------------------

    def health(self) -> PipelineHealth:
        """One consistent snapshot for the daemon, the status file, the monitor and the local page."""
        now = time.monotonic()
        det, capture, stats = self.detector, self.capture, self.stats
        last = stats.last_inference()
        p50, p95 = stats.ages_ms()
        invoke_hist, age_hist = stats.histograms()
        return PipelineHealth(
            model=model_health(det),
            source=SourceHealth(name=self.config.camera.label, state=capture.state, description=capture.describe,
                                losses=capture.losses, last_error=capture.last_error),
            frames=FrameCounts(captured=self.slot.put_count, inferred=stats.inferred, dropped=self.slot.dropped,
                               errors=stats.errors),
            fps=round(stats.fps(now), 2),
            invoke_ms=round(stats.invoke_ms, 2),
            frame_age_ms=(p50, p95),
            invoke_seconds=invoke_hist,
            frame_age_seconds=age_hist,
            cpu_percent=round(self.cpu_percent(), 1),
            rss_mb=round(self._proc.memory_info().rss / 2**20, 1),
            open_events=self.tracker.open_events,
            rate_limit=self.rate_limit,
            paused=self.paused,
            ready=self.first_inference.is_set(),
            alive=self.alive,
            heartbeat=self.heartbeat,
            since_inference_s=None if last is None else now - last,
            # paused, a frame left in the slot is never processed: the source's end is the end
            finished=capture.ended and (self.slot.peek() is None or self.paused),
            last_error=stats.last_error,
            motion=self.gate.health(),
        )

    # -- events ---------------------------------------------------------------------------------

    def _event(self, t: Track, media: _Media, end: float | None) -> Event:
        det = self.detector
        return Event(id=t.id, label=label_for(det.labels, t.class_id), class_id=t.class_id, score=t.best_score,
                     start=t.first_seen, end=end, box=tuple(float(v) for v in t.best_box),
                     source=self.config.camera.label, model=f"{det.bundle.name}:{det.variant.name}", last_seen=t.last_seen,
                     trajectory=t.trajectory.points(t.first_seen), zones=tuple(media.zones), stationary=t.stationary)

    def _note_sightings(self, frame: Frame, w: int, h: int) -> None:
        """The open events seen in this frame have news for their rows: a longer path, maybe a zone."""
        for t in self.tracker.tracks:
            if not t.started or t.last_seen_mono != frame.monotonic:
                continue
            media = self._media.setdefault(t.id, _Media())
            media.dirty = True
            if self.zones:
                inside = tuple(self.zones.containing(t.box, w, h))
                media.zones += [z for z in inside if z not in media.inside]
                media.inside = inside

    def _write(self, t: Track, media: _Media, end: float | None) -> None:
        jpeg = None
        if media.best is not None:
            ev = self.config.events
            try:
                jpeg = snapshot.encode(media.best, media.box, t.class_id, media.score, self.detector.labels,
                                       ev.snapshot, ev.snapshot_quality)
            except Exception as exc:  # noqa: BLE001 - an event without a snapshot beats no event
                self._failed(f"snapshot of event {t.id} failed: {one_line(exc)}")
            media.best = None  # written: let the frame go
        self.events.upsert(self._event(t, media, end), jpeg)
        media.written = time.monotonic()
        media.dirty = False

    def _dispatch(self, updates: list[TrackUpdate], frame: Frame | None) -> None:
        for u in updates:
            t = u.track
            media = self._media.setdefault(t.id, _Media())
            if frame is not None and (u.kind == "start" or t.improved):
                media.best, media.box, media.score = frame, t.box, t.score
            if u.kind == "start":
                if frame is not None and self.zones:
                    h, w = frame.image.shape[:2]
                    media.inside = tuple(self.zones.containing(t.box, w, h))
                    media.zones = list(media.inside)
                self._write(t, media, None)
            elif u.kind == "end":
                self._write(t, media, t.last_seen)
                del self._media[t.id]
            else:  # written by _write_pending, at most every update_interval_s
                media.dirty = True

    def _write_pending(self, now: float) -> None:
        interval = self.config.events.update_interval_s
        pending = []
        for t in self.tracker.tracks:
            media = self._media.get(t.id)
            if media is None or not t.started:
                continue
            if now - media.written >= interval:
                # also without a better snapshot: the row's last sight stays current, so that a crash
                # leaves an event that ends about when its object was last seen
                self._write(t, media, None)
            elif media.best is not None:
                pending.append((media.best.seq, t, media))
        pending.sort(key=lambda p: p[0])
        while len({seq for seq, _, _ in pending}) > MAX_HELD_FRAMES:
            oldest = pending[0][0]
            for _, t, media in [p for p in pending if p[0] == oldest]:
                self._write(t, media, None)
            pending = [p for p in pending if p[0] != oldest]

    # -- reconfiguration (SIGHUP) and the monitor's knobs ----------------------------------------------

    def reconfigure(self, config: Config, detector: Detector, timeout: float = 10.0) -> bool:
        """Adopt a reloaded config and its already tested detector. A new camera config restarts
        capture now; the rest is applied by the inference thread between two frames. Returns once
        they are in service (True), or False after `timeout` with them still pending. A new
        `[motion]` is built here first: a bad mask raises SchemaError and nothing changes."""
        gate = FrameGate(config.motion, config.origin) if config.motion != self.config.motion else None
        if config.camera != self.config.camera:
            self.capture.stop()
            self.capture = self._make_capture(config.camera)
            self.capture.start()
        with self._pending_lock:
            self._pending_config, self._pending_detector, self._pending_gate = config, detector, gate
            return self._adopted.wait_for(lambda: self._pending_config is None and self._pending_detector is None, timeout)

    def _apply_pending(self) -> None:
        with self._pending_lock:
            config = self._pending_config or self.config
            detector = self._pending_detector or self.detector
            if detector.labels != self.detector.labels:
                # Class ids mean other things now: end what the old model saw.
                self._dispatch(self.tracker.close_all(), None)
            self.config = config
            self.detector = detector
            self.filter = DetectionFilter(config.detect, detector.labels, config.low_score)
            self.zones = Zones(config.detect)
            self.tracker.configure(tracker_params(config))
            if self._pending_gate is not None:
                self.gate = self._pending_gate  # the prepare thread takes it up at its next frame
            self._pending_config = self._pending_detector = self._pending_gate = None
            self._adopted.notify_all()

    def test_frame(self) -> Frame | None:
        """A recent real frame to test a new model on before it serves (None before the first)."""
        return self.slot.peek() or self._last_frame

    def _swap(self, based_on: Detector, detector: Detector) -> None:
        """Queue a monitor-driven swap, unless a reload replaced `based_on` meanwhile (the reload wins)."""
        with self._pending_lock:
            if self._pending_detector is None and self.detector is based_on:
                self._pending_detector = detector
            else:
                log.info("dropped a %s/%d-thread swap: a reload came first", detector.variant.name, detector.model.threads)

    def set_rate_limit(self, fps: float | None) -> None:
        self.budget_fps = fps

    def _reload_serving(self, variant: str, threads: int) -> None:
        # From the bundle now serving (resolved at load), never from the config's path: after a
        # rollout switched `current`, only a SIGHUP reload may bring the new bundle in.
        det = self.detector
        model = replace(self.config.model, path=det.options.model)
        self._swap(det, load_and_test(model, variant=variant, threads=threads, frame=self.test_frame(),
                                      low_score=self.config.low_score))

    def set_threads(self, n: int) -> None:
        """Reload the current variant with `n` threads; tested before it replaces the old one."""
        if n != self.detector.model.threads:
            self._reload_serving(self.detector.variant.name, n)

    def set_variant(self, name: str) -> None:
        """Switch bundle variant; loaded and tested first, raises (and keeps the old) on failure."""
        if name != self.detector.variant.name:
            self._reload_serving(name, self.detector.model.threads)

    def set_paused(self, paused: bool) -> None:
        self.paused = paused

    def shed_caches(self) -> None:
        """Give memory back: frames held for snapshots, Python's garbage, and the C heap's free pages."""
        self._last_frame = None
        gc.collect()
        heap.trim()

    def cpu_percent(self) -> float:
        """Process CPU use (100 = one core) since the previous sample at least 0.5 s ago."""
        t0, c0, last = self._cpu_sample
        now = time.monotonic()
        if now - t0 < 0.5:
            return last
        c = sum(self._proc.cpu_times()[:2])
        value = 100.0 * (c - c0) / (now - t0)
        self._cpu_sample = (now, c, value)
        return value


def model_health(det: Detector) -> ModelHealth:
    """The model block of the health snapshot; the path was resolved at load (see load_and_test), so it
    names the bundle actually serving, which is what a rollout checks for."""
    return ModelHealth(path=str(det.options.model), name=det.bundle.name, variant=det.variant.name,
                       sha256=det.sha256, threads=det.model.threads)
