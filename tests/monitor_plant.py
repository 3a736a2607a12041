"""A deterministic simulated plant for the budget controller: a pipeline whose power follows
power = idle + fps * energy(variant, threads), with fps = min(rate limit, source fps, 1 / latency).

It is the actuator (the pipeline's knob interface) and the power source at once; time is a
counter advanced by the test, so a run is exactly repeatable. Like the real pipeline it reports
its frame rate as a mean over the last 5 s.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from runtime.bundle import Variant
from runtime.health import ModelHealth, PipelineHealth, SourceHealth
from runtime.monitor.sensors.power import PowerReading


@dataclass
class PlantVariant:
    latency_ms_1t: float  # one thread
    joules_1t: float  # energy per frame on one thread
    peak_rss_mb: float
    fidelity: float


@dataclass
class Plant:
    variants: dict[str, PlantVariant]
    variant: str
    threads: int = 4
    idle_w: float = 2.7
    source_fps: float = 30.0
    now: float = 0.0
    rate_limit: float | None = None
    paused: bool = False
    broken: set[str] = field(default_factory=set)  # variants that fail to load
    changes: list[tuple[float, str, object]] = field(default_factory=list)
    sheds: int = 0
    extra_rss_mb: float = 0.0
    reported_fps: list[float] = field(default_factory=list)  # the last 5 s, as the pipeline's stats report it

    def advance(self, seconds: float = 1.0) -> None:
        self.now += seconds
        self.reported_fps = (self.reported_fps + [self.fps()])[-5:]

    # The actuator interface (docs/DESIGN.md)
    def set_rate_limit(self, fps: float | None) -> None:
        self.rate_limit = fps
        self.changes.append((self.now, "rate_limit", fps))

    def set_threads(self, n: int) -> None:
        self.threads = n
        self.changes.append((self.now, "threads", n))

    def set_variant(self, name: str) -> None:
        if name in self.broken:
            raise RuntimeError(f"{name}: model failed its test invocation")
        self.variant = name
        self.changes.append((self.now, "variant", name))

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        self.changes.append((self.now, "paused", paused))

    def shed_caches(self) -> None:
        self.sheds += 1

    def fps(self) -> float:
        if self.paused:
            return 0.0
        v = self.variants[self.variant]
        # Threads speed an invoke up sublinearly and cost a little extra energy each (synchronisation).
        max_fps = 1000.0 / (v.latency_ms_1t / self.threads**0.8)
        return min(self.rate_limit or float("inf"), self.source_fps, max_fps)

    def power(self) -> float:
        v = self.variants[self.variant]
        return self.idle_w + self.fps() * v.joules_1t * (1 + 0.08 * (self.threads - 1))

    def rss(self) -> float:
        return self.variants[self.variant].peak_rss_mb + self.extra_rss_mb

    def health(self) -> PipelineHealth:
        # Like the pipeline: the rate over the last 5 s, so it lags a change.
        fps = sum(self.reported_fps) / len(self.reported_fps) if self.reported_fps else self.fps()
        return PipelineHealth(model=ModelHealth("plant", "plant", self.variant, "", self.threads),
                              source=SourceHealth("plant", "streaming", "simulated", 0),
                              fps=fps, rss_mb=self.rss(), rate_limit=self.rate_limit, paused=self.paused)

    # The power source interface
    source = "sensor:plant"

    def read(self, now: float) -> PowerReading:
        return PowerReading(self.power(), self.source)

    def clock(self) -> float:
        return self.now

    def bundle_variants(self) -> list[Variant]:
        return [
            Variant(name, file=None, quantization="int8" if "int8" in name else "none",
                    metrics={"latency_ms": v.latency_ms_1t / 4**0.8, "peak_rss_mb": v.peak_rss_mb, "fidelity": {"metric": "map50", "value": v.fidelity}})
            for name, v in self.variants.items()
        ]


def person_plant(**kw) -> Plant:
    """Numbers in the range of SSDLite-MobileNetV2 on a Raspberry Pi 4 (float32 vs int8)."""
    return Plant(
        variants={
            "float32": PlantVariant(latency_ms_1t=180.0, joules_1t=0.12, peak_rss_mb=120.0, fidelity=1.0),
            "float16": PlantVariant(latency_ms_1t=185.0, joules_1t=0.125, peak_rss_mb=125.0, fidelity=0.999),
            "int8": PlantVariant(latency_ms_1t=75.0, joules_1t=0.05, peak_rss_mb=45.0, fidelity=0.97),
        },
        variant="float32",
        **kw,
    )


def ladder_plant(**kw) -> Plant:
    """A bundle with input-size variants, figures in the range of SSDLite on a Raspberry Pi 4: int8
    about half the float32 time, latency falling with the input's area, fidelity with its size."""
    kw.setdefault("idle_w", 1.5)  # the process's share above idle: what each variant's cost changes
    return Plant(
        variants={
            "float32": PlantVariant(latency_ms_1t=180.0, joules_1t=0.12, peak_rss_mb=120.0, fidelity=0.9998),
            "int8": PlantVariant(latency_ms_1t=75.0, joules_1t=0.05, peak_rss_mb=45.0, fidelity=0.99),
            "float32-224": PlantVariant(latency_ms_1t=100.0, joules_1t=0.067, peak_rss_mb=90.0, fidelity=0.95),
            "int8-224": PlantVariant(latency_ms_1t=42.0, joules_1t=0.028, peak_rss_mb=40.0, fidelity=0.93),
            "int8-160": PlantVariant(latency_ms_1t=21.0, joules_1t=0.014, peak_rss_mb=36.0, fidelity=0.80),
        },
        variant="float32",
        **kw,
    )
