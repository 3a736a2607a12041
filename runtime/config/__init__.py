"""The daemon's TOML config, validated into typed objects.

Each key is declared once, with its default, bounds and documentation (sections.py, through
keys.py); the parser, `edgewatch config check` and deploy/config.example.toml (`edgewatch config
example` prints it; a test holds the committed file to it) follow from those declarations.
Unknown keys are refused and bad values name their path (`camera.fps: must be > 0, got 0`): a typo
must never silently become a default on a board nobody is watching.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .. import paths
from ..table import SchemaError, Table
from .keys import Context, read_section, render_section
from .sections import (
    Budgets,
    CameraConfig,
    DetectConfig,
    EventsConfig,
    ModelConfig,
    MotionConfig,
    TrackerConfig,
    WebConfig,
    Zone,
    classify_source,
    is_loopback,
    resolve_source,
)

__all__ = ["Budgets", "CameraConfig", "Config", "DetectConfig", "EventsConfig", "ModelConfig", "MotionConfig", "SchemaError",
           "TrackerConfig", "WebConfig", "Zone", "classify_source", "embedded_default", "example_text", "is_loopback",
           "load", "parse", "resolve_source"]

EMBEDDED = "(embedded default)"

# name, section, documentation above it, optional (absent: that feature is off)
SECTIONS: tuple[tuple[str, type, str, bool], ...] = (
    ("camera", CameraConfig, "Where frames come from.", False),
    ("model", ModelConfig, "The detector: a bundle made by `edgewatch convert`, or a recognisable .tflite.", False),
    ("detect", DetectConfig, "Which detections count.", False),
    ("motion", MotionConfig, "Which frames the model sees: those with motion (found on a small grey copy of each frame),\n"
                             "and a few more while tracks are alive or nothing moves.", False),
    ("tracker", TrackerConfig, "Detections become tracks, tracks become events.", False),
    ("events", EventsConfig, "The local event log (SQLite + snapshots) and its retention.", False),
    ("web", WebConfig, "The local page (runtime/web). On loopback only: from a laptop, `ssh -L 8090:127.0.0.1:8090 BOARD`,\n"
                       "then open http://localhost:8090/.", False),
    ("budget", Budgets, "Resource budgets (runtime/monitor): with no [budget] section nothing is enforced.", True),
)


@dataclass(frozen=True)
class Config:
    source_file: Path | None  # None: the embedded default
    camera: CameraConfig = field(default_factory=CameraConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    events: EventsConfig = field(default_factory=EventsConfig)
    web: WebConfig = field(default_factory=WebConfig)
    budget: Budgets | None = None  # None: no [budget] section, nothing enforced

    @property
    def low_score(self) -> float:
        """The lowest detection score the tracker is given (it may only continue events)."""
        return self.tracker.continue_score(self.detect.min_score)

    @property
    def origin(self) -> str:
        """Where this config came from, for logs and messages."""
        return str(self.source_file) if self.source_file else "the embedded default"


def parse(data: dict, where: str, base: Path) -> Config:
    top = Table(data, where)
    ctx = Context(base)
    values = {}
    for name, section, _, optional in SECTIONS:
        if optional and not top.has(name):
            top.raw(name, None)
            continue
        values[name] = read_section(section, top.table(name, {}), ctx)
    top.done()
    config = Config(Path(where) if where != EMBEDDED else None, **values)
    motion, tracker = config.motion, config.tracker
    if motion.enabled and motion.track_refresh_s >= tracker.max_missed_s:
        raise SchemaError(where, "motion.track_refresh_s", f"must be below tracker.max_missed_s ({tracker.max_missed_s:g}), or a "
                          f"still object is dropped between two looks at it, got {motion.track_refresh_s:g}")
    if tracker.low_score is not None and tracker.low_score > config.detect.min_score:
        raise SchemaError(where, "tracker.low_score",
                          f"must be <= detect.min_score ({config.detect.min_score:g}), got {tracker.low_score:g}")
    return config


def embedded_default() -> Config:
    """The bundled person model on the bundled video, looped at its own frame rate."""
    return parse({"camera": {"source": str(paths.BUNDLED_VIDEO), "loop": True}}, EMBEDDED, paths.ASSETS)


def load(path: Path | None) -> Config:
    """The config at `path`, or the embedded default when `path` is None. Raises SchemaError."""
    if path is None:
        return embedded_default()
    where = str(path)
    try:
        data = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise SchemaError(where, "", "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaError(where, "", f"cannot read ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise SchemaError(where, "", f"not valid TOML ({exc})") from None
    return parse(data, where, Path(path).resolve().parent)


HEADER = """\
edgewatch daemon configuration: /etc/edgewatch/config.toml (or `edgewatch run --config FILE`).

Every key is shown with its default value; delete what you do not change. Unknown keys are
errors (a typo must not silently become a default). Check a file with:
    edgewatch config check --config FILE
Reload a running daemon with `systemctl reload edgewatch` (SIGHUP): the new config and model are
loaded and tested first; if anything fails, the running ones stay and the error is logged.
Relative paths are relative to this file's folder. Generated from the declarations in
runtime/config/sections.py by `edgewatch config example`.

With no config file at all, `edgewatch run` uses the embedded default: the bundled person model
on the bundled sample video (runtime/assets/vtest.avi), looped at its own frame rate."""


def example_text() -> str:
    """deploy/config.example.toml: every section and key with its default and documentation."""
    lines = [f"# {line}" if line else "#" for line in HEADER.splitlines()]
    for name, section, doc, optional in SECTIONS:
        lines.append("")
        lines += render_section(name, section, doc, optional)
    return "\n".join(lines) + "\n"
