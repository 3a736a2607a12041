"""GET /metrics: the daemon's figures in the Prometheus text format, written by prometheus_client.

The figures are read when scraped, from what the daemon already keeps (its status, the pipeline's
cumulative histograms): nothing is counted twice and nothing runs between scrapes. The library's
ProcessCollector adds the process's own figures (process_resident_memory_bytes is the RSS).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
    StateSetMetricFamily,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from ..health import HistogramSnapshot, PipelineHealth
from .history import figures_from_status

STATES = ("starting", "running", "degraded", "paused", "stopping")
BUDGET_STATES = ("free", "limited", "paused")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class DaemonCollector(Collector):
    """`status()`: the dict status.json holds (None before the first); `health()`: the pipeline's
    report, for its cumulative timings; `figures()`: the latest sampled figures, for what the
    status lacks; `viewers()`: live viewers now."""

    def __init__(self, status: Callable[[], dict[str, Any] | None], health: Callable[[], PipelineHealth | None],
                 figures: Callable[[], Mapping[str, float | None]], viewers: Callable[[], int]):
        self._status = status
        self._health = health
        self._figures = figures
        self._viewers = viewers

    def describe(self) -> list[Metric]:
        return []  # collect() reads the daemon; registering must not

    def collect(self) -> Iterator[Metric]:
        status = self._status() or {}
        frames = status.get("frames") or {}
        events = status.get("events") or {}
        counters = (
            ("edgewatch_frames_captured", "Frames delivered by the camera", frames.get("captured")),
            ("edgewatch_frames_inferred", "Frames the model ran on", frames.get("inferred")),
            ("edgewatch_frames_dropped", "Frames replaced by a newer one before inference", frames.get("dropped")),
            ("edgewatch_frame_errors", "Frames that failed in preprocessing, inference or events", frames.get("errors")),
            ("edgewatch_events_written", "Events written to the event log", events.get("written")),
            ("edgewatch_events_dropped", "Events the event log could not keep (full queue, failing disk)", events.get("dropped")),
            ("edgewatch_camera_losses", "Times the camera was lost", (status.get("source") or {}).get("losses")),
        )
        for name, doc, value in counters:
            if _number(value) is not None:
                yield CounterMetricFamily(name, doc, value=value)

        yield from self._histogram_families()

        gauges = [
            ("edgewatch_fps", "Inferences per second, recent", status.get("fps")),
            ("edgewatch_events_open", "Events in view now", events.get("open")),
            ("edgewatch_events_pending", "Event writes queued, not yet committed", events.get("pending")),
            ("edgewatch_rate_limit_fps", "The inference rate cap in force (config or budget)", status.get("rate_limit_fps")),
            ("edgewatch_live_viewers", "Viewers of the live view now", self._viewers()),
        ]
        figures = {k: v for k, v in figures_from_status(status).items() if v is not None}
        for key, value in self._figures().items():
            figures.setdefault(key, value)
        gauges += [
            ("edgewatch_power_watts", "Power drawn, as the board's meter or estimate gives it", figures.get("power_w")),
            ("edgewatch_temperature_celsius", "The hottest thermal zone", figures.get("temperature_c")),
        ]
        healthy = status.get("healthy")
        if isinstance(healthy, bool):
            gauges.append(("edgewatch_healthy", "1 when the daemon is healthy", int(healthy)))
        for name, doc, value in gauges:
            if _number(value) is not None:
                yield GaugeMetricFamily(name, doc, value=value)
        if status.get("state") in STATES:
            yield StateSetMetricFamily("edgewatch_state", "The daemon's state",
                                       {s: s == status["state"] for s in STATES})
        model = status.get("model") or {}
        if model:
            yield InfoMetricFamily("edgewatch_model", "The model in service", value={
                "name": str(model.get("name") or ""), "variant": str(model.get("variant") or ""),
                "sha256": str(model.get("sha256") or "")})
        yield from self._budget_families(status.get("budget") or {})

    def _histogram_families(self) -> Iterator[Metric]:
        health = self._health()
        if health is None:
            return
        for name, doc, snap in (("edgewatch_invoke_seconds", "Model invoke time per frame", health.invoke_seconds),
                                ("edgewatch_frame_age_seconds", "From capture to the end of inference, per inferred frame",
                                 health.frame_age_seconds)):
            yield HistogramMetricFamily(name, doc, buckets=_buckets(snap), sum_value=snap.sum)

    def _budget_families(self, budget: dict[str, Any]) -> Iterator[Metric]:
        if not budget:
            return
        if budget.get("state") in BUDGET_STATES:
            yield StateSetMetricFamily("edgewatch_budget_state", "free: nothing held back; limited: a knob is turned; paused",
                                       {s: s == budget["state"] for s in BUDGET_STATES})
        per_budget = GaugeMetricFamily("edgewatch_budget_limit", "Each budget's limit, in its own unit", labels=["budget", "unit"])
        states = GaugeMetricFamily("edgewatch_budget_condition", "Each budget's condition (1 for the current one)",
                                   labels=["budget", "condition"])
        for name, key, unit in (("memory", "budget_mb", "megabytes"), ("power", "budget_w", "watts"),
                                ("temperature", "budget_c", "celsius")):
            part = budget.get(name) or {}
            if _number(part.get(key)) is not None:
                per_budget.add_metric([name, unit], part[key])
            if isinstance(part.get("state"), str):
                states.add_metric([name, part["state"]], 1)
        yield from (family for family in (per_budget, states) if family.samples)
        controller = budget.get("controller") or {}
        if _number(controller.get("level")) is not None:
            yield GaugeMetricFamily("edgewatch_budget_level", "Steps down the controller's ladder (0: all knobs free)",
                                    value=controller["level"])
        if _number(budget.get("decisions")) is not None:
            yield CounterMetricFamily("edgewatch_budget_decisions", "Knob changes the controller made", value=budget["decisions"])
        knobs = budget.get("knobs") or {}
        if _number(knobs.get("threads")) is not None:
            yield GaugeMetricFamily("edgewatch_threads", "Interpreter threads in use", value=knobs["threads"])


def _buckets(snap: HistogramSnapshot) -> list[tuple[str, float]]:
    return [(repr(float(b)), c) for b, c in zip(snap.bounds, snap.cumulative)] + [("+Inf", snap.count)]


class Metrics:
    """The registry /metrics renders: the daemon's collector and the process's own."""

    def __init__(self, collector: DaemonCollector):
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(collector)
        ProcessCollector(registry=self.registry)

    def render(self, accept: str | None) -> tuple[bytes, str]:
        """The exposition in the format the scraper asked for (Accept), and its content type."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type
