"""The daemon's TOML config, validated into typed objects. Every key and its default is
documented in deploy/config.example.toml (a test checks the two agree).

Unknown keys are refused and bad values name their path (`camera.fps: must be > 0, got 0`):
a typo must never silently become a default on a board nobody is watching.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .table import SchemaError, Table
from . import paths

SNAPSHOT_MODES = ("box", "crop", "none")
ZONE_POINTS = ("bottom", "center")
EMBEDDED = "(embedded default)"


@dataclass(frozen=True)
class CameraConfig:
    source: str  # V4L2 index ("0") or /dev path, an rtsp/http URL, a video file, or "picamera2[:N]"
    name: str = "camera"
    width: int = 0  # 0: the source's own size
    height: int = 0
    fps: float | None = None  # None: the source's own rate (a file's, a camera's default)
    loop: bool = False  # files only: start again at the end instead of stopping
    as_fast_as_possible: bool = False  # files only: do not pace playback at the file's frame rate
    lores: tuple[int, int] | None = None  # picamera2 only: a small inference stream (w, h)
    open_timeout_s: float = 10.0
    read_timeout_s: float = 5.0
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0


@dataclass(frozen=True)
class ModelConfig:
    path: Path
    variant: str | None = None
    threads: int | None = None  # None: one per available core
    score_threshold: float | None = None  # None: the bundle's own


@dataclass(frozen=True)
class Zone:
    name: str
    polygon: tuple[tuple[float, float], ...]  # (x, y) as fractions of the frame


@dataclass(frozen=True)
class DetectConfig:
    labels: tuple[str, ...] = ()  # empty: every label
    min_score: float = 0.5
    min_area: float = 0.0  # fraction of the frame's area
    zones: tuple[Zone, ...] = ()  # empty: the whole frame
    zone_point: str = "bottom"  # which point of a box must lie in a zone: its bottom centre or centre
    max_fps: float | None = None  # None: as fast as the model runs


@dataclass(frozen=True)
class TrackerConfig:
    iou: float = 0.3
    min_hits: int = 2  # detections before an event starts (one-frame flickers make no event)
    max_missed_s: float = 2.0  # unseen this long: the event ends


@dataclass(frozen=True)
class EventsConfig:
    max_age_days: float = 30.0
    max_mb: float = 1024.0  # rows and snapshot bytes together
    batch_seconds: float = 2.0
    snapshot: str = "box"  # box: the whole frame with the box drawn; crop: the box only; none
    snapshot_quality: int = 85
    update_interval_s: float = 5.0  # an open event is rewritten at most this often
    journal: bool = True  # one JSON line per event start and end on stdout (the journal)


@dataclass(frozen=True)
class WebConfig:
    enabled: bool = True
    host: str = "127.0.0.1"  # loopback only, unless the config names another address (and a token)
    port: int = 8090  # 0: any free port (status.json says which)
    token: str | None = field(default=None, repr=False)  # required off loopback; then on every request
    max_viewers: int = 5  # live viewers at once
    live_fps: float = 5.0  # live view frames a second, at most
    live_width: int = 640  # live view width in pixels, at most
    timeout_s: float = 10.0  # a request's head must arrive, and each write complete, within this


@dataclass(frozen=True)
class Config:
    source_file: Path | None  # None: the embedded default
    camera: CameraConfig
    model: ModelConfig
    detect: DetectConfig = field(default_factory=DetectConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    events: EventsConfig = field(default_factory=EventsConfig)
    budget: Any = None  # runtime.monitor.budgets.parse_budgets(...) when [budget] is present
    web: WebConfig = field(default_factory=WebConfig)

    @property
    def describe(self) -> str:
        return str(self.source_file) if self.source_file else "the embedded default"


def _path(value: str, base: Path) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else base / p


def _camera(t: Table, base: Path) -> CameraConfig:
    raw = t.raw("source", "0")
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        source = str(raw)
    elif isinstance(raw, str) and raw:
        source = raw
    else:
        raise t.error("source", f"must be a device index, a device path, a URL, a file or 'picamera2', got {raw!r}")
    from .sources.opencv import classify

    if not source.startswith("picamera2") and classify(source) == "file":
        source = str(_path(source, base))
    width = t.number("width", 0, integer=True, ge=0)
    height = t.number("height", 0, integer=True, ge=0)
    if (width == 0) != (height == 0):
        raise t.error("width" if width == 0 else "height", "set width and height together (0 and 0: the source's own)")
    lores = t.raw("lores", None)
    if lores is not None:
        w, h = t.numbers("lores", length=2)
        if w <= 0 or h <= 0 or not w.is_integer() or not h.is_integer():
            raise t.error("lores", f"must be two positive integers, got {lores!r}")
        lores = (int(w), int(h))
    cfg = CameraConfig(
        source=source,
        name=t.str("name", "camera"),
        width=width,
        height=height,
        fps=t.number("fps", None, gt=0),
        loop=t.bool("loop", False),
        as_fast_as_possible=t.bool("as_fast_as_possible", False),
        lores=lores,
        open_timeout_s=t.number("open_timeout_s", 10.0, gt=0),
        read_timeout_s=t.number("read_timeout_s", 5.0, gt=0),
        reconnect_min_s=t.number("reconnect_min_s", 0.5, gt=0),
        reconnect_max_s=t.number("reconnect_max_s", 30.0, gt=0),
    )
    if cfg.reconnect_max_s < cfg.reconnect_min_s:
        raise t.error("reconnect_max_s", f"must be >= reconnect_min_s ({cfg.reconnect_min_s:g}), got {cfg.reconnect_max_s:g}")
    t.done()
    return cfg


def _model(t: Table, base: Path, default_path: Path) -> ModelConfig:
    path = t.str("path", None)
    cfg = ModelConfig(
        path=_path(path, base) if path else default_path,
        variant=t.str("variant", None),
        threads=t.number("threads", None, integer=True, ge=1),
        score_threshold=t.number("score_threshold", None, ge=0, le=1),
    )
    t.done()
    return cfg


def _zone(t: Table) -> Zone:
    name = t.str("name")
    polygon = t.list("polygon")
    if len(polygon) < 3:
        raise t.error("polygon", f"needs at least 3 points, got {len(polygon)}")
    points = []
    for i, p in enumerate(polygon):
        if (not isinstance(p, list) or len(p) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in p)
                or not all(0 <= v <= 1 for v in p)):
            raise t.error(f"polygon[{i}]", f"must be [x, y] with fractions of the frame in 0..1, got {p!r}")
        points.append((float(p[0]), float(p[1])))
    t.done()
    return Zone(name, tuple(points))


def _detect(t: Table) -> DetectConfig:
    zones_raw = t.list("zones", [])
    zones = tuple(_zone(Table(z, t.where, t.path(f"zones[{i}]"))) for i, z in enumerate(zones_raw))
    cfg = DetectConfig(
        labels=tuple(t.list("labels", [], str)),
        min_score=t.number("min_score", 0.5, ge=0, le=1),
        min_area=t.number("min_area", 0.0, ge=0, le=1),
        zones=zones,
        zone_point=t.str("zone_point", "bottom", ZONE_POINTS),
        max_fps=t.number("max_fps", None, gt=0),
    )
    t.done()
    return cfg


def _tracker(t: Table) -> TrackerConfig:
    cfg = TrackerConfig(
        iou=t.number("iou", 0.3, gt=0, le=1),
        min_hits=t.number("min_hits", 2, integer=True, ge=1),
        max_missed_s=t.number("max_missed_s", 2.0, gt=0),
    )
    t.done()
    return cfg


def _events(t: Table) -> EventsConfig:
    cfg = EventsConfig(
        max_age_days=t.number("max_age_days", 30.0, gt=0),
        max_mb=t.number("max_mb", 1024.0, gt=0),
        batch_seconds=t.number("batch_seconds", 2.0, gt=0),
        snapshot=t.str("snapshot", "box", SNAPSHOT_MODES),
        snapshot_quality=t.number("snapshot_quality", 85, integer=True, ge=1, le=100),
        update_interval_s=t.number("update_interval_s", 5.0, gt=0),
        journal=t.bool("journal", True),
    )
    t.done()
    return cfg


TOKEN = re.compile(r"[A-Za-z0-9._~-]{16,256}")
LOOPBACK_NAMES = ("localhost",)


def _web(t: Table) -> WebConfig:
    host = t.str("host", "127.0.0.1")
    loopback = host in LOOPBACK_NAMES
    if not loopback:
        try:
            loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
        except ValueError:
            raise t.error("host", f"must be an IP address (127.0.0.1, ::1, 0.0.0.0, a board's own address) or localhost, got {host!r}") from None
    token = t.str("token", None)
    if token is not None and not TOKEN.fullmatch(token):
        raise t.error("token", "must be 16 to 256 characters of A-Z a-z 0-9 . _ ~ - (e.g. from: openssl rand -hex 16)")
    if not loopback and token is None:
        raise t.error("token", f"is required when host is not loopback ({host!r}): the page shows the camera")
    cfg = WebConfig(
        enabled=t.bool("enabled", True),
        host=host,
        port=t.number("port", 8090, integer=True, ge=0, le=65535),
        token=token,
        max_viewers=t.number("max_viewers", 5, integer=True, ge=1, le=50),
        live_fps=t.number("live_fps", 5.0, gt=0, le=30),
        live_width=t.number("live_width", 640, integer=True, ge=160, le=3840),
        timeout_s=t.number("timeout_s", 10.0, gt=0, le=300),
    )
    t.done()
    return cfg


def parse(data: dict, where: str, base: Path) -> Config:
    top = Table(data, where)
    camera = _camera(top.table("camera", {}), base)
    model = _model(top.table("model", {}), base, paths.BUNDLED_MODEL)
    detect = _detect(top.table("detect", {}))
    tracker = _tracker(top.table("tracker", {}))
    events = _events(top.table("events", {}))
    web = _web(top.table("web", {}))
    budget = None
    if top.has("budget"):
        from .monitor.budgets import parse_budgets

        budget = parse_budgets(top.table("budget"))
    top.done()
    return Config(Path(where) if where != EMBEDDED else None, camera, model, detect, tracker, events, budget, web)


def embedded_default() -> Config:
    """The bundled person model on the bundled video, looped at its own frame rate."""
    data = {"camera": {"source": str(paths.BUNDLED_VIDEO), "name": "vtest", "loop": True}}
    return parse(data, EMBEDDED, paths.ASSETS)


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
