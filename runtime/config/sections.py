"""The daemon's config sections, each key declared once (runtime/config/keys.py): the parser, the
bounds `config check` enforces and deploy/config.example.toml all follow from these declarations."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..paths import BUNDLED_MODEL
from ..table import Table
from .keys import Context, key

SNAPSHOT_MODES = ("box", "crop", "none")
ZONE_POINTS = ("bottom", "center")
POWER_SCOPES = ("board", "process")
# The power profiles runtime/monitor/sensors/power/estimate.py knows ("auto": from the device tree).
BOARD_PROFILES = ("pi-zero-2w", "pi-3b+", "pi-4b", "pi-5", "generic")
NETWORK_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")
MAX_THREADS = 64  # more interpreter threads than any board has cores; beyond it LiteRT may crash
MAX_SIDE = 8192  # pixels: no camera or file edgewatch reads is larger


def classify_source(spec: str) -> str:
    """What a `camera.source` names: 'picamera2', 'device' (V4L2 index or /dev path), 'network'
    (URL) or 'file'."""
    if spec == "picamera2" or spec.startswith("picamera2:"):
        return "picamera2"
    if spec.isdigit() or spec.startswith("/dev/"):
        return "device"
    if spec.lower().startswith(NETWORK_SCHEMES):
        return "network"
    return "file"


def resolve_source(spec: str, base: Path) -> str:
    """A file source relative to `base` made absolute; any other source as it is."""
    if classify_source(spec) != "file":
        return spec
    p = Path(spec).expanduser()
    return str(p if p.is_absolute() else base / p)


def _path(value: str, base: Path) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else base / p


# -- [camera] ---------------------------------------------------------------------------------------

def _source(t: Table, name: str, ctx: Context) -> str:
    raw = t.raw(name, "0")
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        return str(raw)
    if isinstance(raw, str) and raw:
        return resolve_source(raw, ctx.base)
    raise t.error(name, f"must be a device index, a device path, a URL, a file or 'picamera2', got {raw!r}")


def _lores(t: Table, name: str, ctx: Context) -> tuple[int, int] | None:
    raw = t.raw(name, None)
    if raw is None:
        return None
    w, h = t.numbers(name, length=2)
    if not (0 < w <= MAX_SIDE and 0 < h <= MAX_SIDE and w.is_integer() and h.is_integer()):
        raise t.error(name, f"must be two integers in 1..{MAX_SIDE}, got {raw!r}")
    return int(w), int(h)


@dataclass(frozen=True)
class CameraConfig:
    source: str = key("0", "a V4L2 index or /dev path, an rtsp:// or http:// URL, a video file, or picamera2[:N]",
                      kind=str, parse=_source, notes=(
                          '"0" (or 0): the first V4L2 camera; "/dev/video2": a device path; "rtsp://..." / "http://...": a',
                          'network camera; "clip.mp4": a video file; "picamera2" or "picamera2:1": the Raspberry Pi camera.'))
    name: str = key("", "recorded with every event; default: the source's own name (the file's, the device's)", kind=str)
    width: int = key(0, "0 and 0: the source's own size (files are resized when set)", ge=0, le=MAX_SIDE)
    height: int = key(0, "set with width", ge=0, le=MAX_SIDE)
    fps: float | None = key(None, "default: the source's own rate (a file's, a camera's)", kind=float, gt=0, le=240, example=10.0)
    loop: bool = key(False, "files: start again at the end instead of stopping the daemon")
    as_fast_as_possible: bool = key(False, "files: decode as fast as possible instead of at the file's frame rate")
    lores: tuple[int, int] | None = key(None, "picamera2: a small stream for inference, the main one for snapshots",
                                        kind=tuple, parse=_lores, example=[320, 240])
    open_timeout_s: float = key(10.0, "a camera that does not open in this time is treated as lost", gt=0, le=600)
    read_timeout_s: float = key(5.0, "no frame for this long: lost (and reconnected)", gt=0, le=600)
    reconnect_min_s: float = key(0.5, "reconnect backoff: doubles from min to max after each failure", gt=0, le=3600)
    reconnect_max_s: float = key(30.0, "the longest wait between reconnection attempts", gt=0, le=3600)

    def check(self, t: Table) -> None:
        if (self.width == 0) != (self.height == 0):
            raise t.error("width" if self.width == 0 else "height", "set width and height together (0 and 0: the source's own)")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise t.error("reconnect_max_s", f"must be >= reconnect_min_s ({self.reconnect_min_s:g}), got {self.reconnect_max_s:g}")

    @property
    def label(self) -> str:
        """The name recorded with events: the configured one, else one the source gives itself."""
        if self.name:
            return self.name
        kind = classify_source(self.source)
        if kind == "file":
            return Path(self.source).stem
        if kind == "device":
            return f"video{self.source}" if self.source.isdigit() else Path(self.source).name
        if kind == "network":
            return self.source.split("://", 1)[1].split("/", 1)[0].rpartition("@")[2]
        return self.source


# -- [model] -----------------------------------------------------------------------------------------

def _model_path(t: Table, name: str, ctx: Context) -> Path:
    value = t.str(name, None)
    return _path(value, ctx.base) if value else BUNDLED_MODEL


def _labels_path(t: Table, name: str, ctx: Context) -> Path | None:
    value = t.str(name, None)
    return _path(value, ctx.base) if value else None


@dataclass(frozen=True)
class ModelConfig:
    path: Path = key(None, "a bundle folder, model.json or .tflite; default: the bundled person model",
                            kind=str, parse=_model_path, example="/var/lib/edgewatch/models/current")
    variant: str | None = key(None, "default: the bundle's default variant", kind=str, example="int8")
    threads: int | None = key(None, "default: one per available core", kind=int, ge=1, le=MAX_THREADS, example=4)
    score_threshold: float | None = key(None, "the decoder's cut; default: the bundle's own", kind=float, ge=0, le=1, example=0.5)
    iou: float | None = key(None, "NMS IoU threshold (yolo, ssd_anchors); default: the bundle's own", kind=float, gt=0, le=1, example=0.7)
    labels: Path | None = key(None, "a bare .tflite's class names, one per line; default: the bundle's, or those "
                                    "Ultralytics wrote into the file", kind=str, parse=_labels_path, example="labels.txt")


# -- [detect] ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Zone:
    name: str
    polygon: tuple[tuple[float, float], ...]  # (x, y) as fractions of the frame


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


def _zones(t: Table, name: str, ctx: Context) -> tuple[Zone, ...]:
    return tuple(_zone(Table(z, t.where, t.path(f"{name}[{i}]"))) for i, z in enumerate(t.list(name, [])))


@dataclass(frozen=True)
class DetectConfig:
    labels: tuple[str, ...] = key((), 'labels to keep, e.g. ["person", "car"]; empty: every label')
    min_score: float = key(0.5, "detections below this score are ignored", ge=0, le=1)
    min_area: float = key(0.0, "minimum box area as a fraction of the frame (0.01 = 1 %)", ge=0, le=1)
    zone_point: str = key("bottom", 'with zones: the point of a box that must lie in a zone ("bottom" centre or "center")',
                          choices=ZONE_POINTS)
    max_fps: float | None = key(None, "inference rate cap; default: as fast as the model runs", kind=float, gt=0, le=240, example=5.0)
    zones: tuple[Zone, ...] = key((), "empty: the whole frame. Polygons in fractions of the frame, e.g.", kind=tuple,
                                  parse=_zones, after=("[[detect.zones]]", 'name = "door"',
                                                       "polygon = [[0.1, 0.5], [0.4, 0.5], [0.4, 1.0], [0.1, 1.0]]"))


# -- [tracker] ---------------------------------------------------------------------------------------

DEFAULT_LOW_SCORE = 0.2


@dataclass(frozen=True)
class TrackerConfig:
    iou: float = key(0.3, "a detection continues a track when its box overlaps the track's predicted box this much", gt=0, le=1)
    min_hits: int = key(2, "detections before an event starts (one-frame flickers make none)", ge=1, le=100)
    max_missed_s: float = key(2.0, "unseen this long: the event ends", gt=0, le=600)
    low_score: float | None = key(None, "detections from here up to detect.min_score only continue events; "
                                  f"default: {DEFAULT_LOW_SCORE:g}, or detect.min_score when that is lower",
                                  kind=float, ge=0, le=1, example=DEFAULT_LOW_SCORE)
    stationary_after_s: float = key(10.0, "in place this long: the event is marked stationary", gt=0, le=86400)
    stationary_max_missed_s: float = key(30.0, "a stationary object unseen this long: its event ends", gt=0, le=86400)
    trajectory_interval_s: float = key(0.5, "an event's trajectory keeps at most one point per interval", gt=0, le=3600)

    def check(self, t: Table) -> None:
        if self.stationary_max_missed_s < self.max_missed_s:
            raise t.error("stationary_max_missed_s",
                          f"must be >= max_missed_s ({self.max_missed_s:g}), got {self.stationary_max_missed_s:g}")

    def continue_score(self, min_score: float) -> float:
        """The lowest score that may continue an event (an old config, without low_score, keeps loading
        with a detect.min_score below the default)."""
        return min(DEFAULT_LOW_SCORE, min_score) if self.low_score is None else self.low_score


# -- [motion] ----------------------------------------------------------------------------------------

def _mask_path(t: Table, name: str, ctx: Context) -> Path | None:
    value = t.str(name, None)
    return _path(value, ctx.base) if value else None


@dataclass(frozen=True)
class MotionConfig:
    enabled: bool = key(True, "the model runs on frames with motion, while tracks live, and at a keep-alive; false: on every frame")
    keepalive_s: float = key(5.0, "nothing moving and no track alive: one frame every this often goes to the model", gt=0, le=3600)
    track_refresh_s: float = key(0.5, "tracks alive but nothing moving (someone standing): one frame every this often "
                                      "(below tracker.max_missed_s)", gt=0, le=600)
    mask: Path | None = key(None, "where motion is ignored: an image (black: ignored, any size) or a .json list of polygons "
                                  "in fractions of the frame", kind=str, parse=_mask_path, example="motion-mask.png")
    regions: bool = key(False, "run the model on crops around small motion too (distant objects seen larger; an invoke per crop)")
    frame_height: int = key(72, "motion is found on a grey copy of the frame this many pixels high", ge=16, le=360)
    threshold: float = key(15.0, "the least change of a pixel's grey level (0..255) that is motion", gt=0, le=255)
    noise_factor: float = key(4.0, "... or this many times the pixel's own noise, where that is more", ge=1, le=20)
    min_pixels: int = key(3, "changed pixels of the small frame a motion box needs (one noisy pixel never is one)", ge=1, le=10000)
    learn_s: float = key(10.0, "time constant the background follows slow change with (light, shadows)", gt=0, le=3600)
    absorb_s: float = key(10.0, "a change that stays put this long becomes background (a parked car, someone sitting)", gt=0, le=3600)
    relearn_share: float = key(0.5, "more of the frame than this changing at once, and not by one global gain: learn the scene anew",
                               gt=0, le=1)
    settle_s: float = key(1.0, "after the start or a relearn, no motion is reported for this long", gt=0, le=60)


# -- [events] ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EventsConfig:
    max_age_days: float = key(30.0, "retention by age ...", gt=0, le=3650)
    max_mb: float = key(1024.0, "... and by size of the log (rows and snapshots together)", gt=0, le=1_000_000)
    batch_seconds: float = key(2.0, "writes are batched: an SD card wears out under per-frame commits", gt=0, le=60)
    snapshot: str = key("box", '"box": the frame with the box drawn; "crop": the box only; "none"', choices=SNAPSHOT_MODES)
    snapshot_quality: int = key(85, "JPEG quality", ge=1, le=100)
    update_interval_s: float = key(5.0, "an open event (and its best snapshot) is rewritten at most this often", gt=0, le=3600)
    journal: bool = key(True, "one JSON line per event start and end on stderr (the journal)")


# -- [web] -------------------------------------------------------------------------------------------

LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")
TOKEN = re.compile(r"[A-Za-z0-9._~-]{16,256}")


def is_loopback(host: str) -> bool:
    """A loopback IP literal (127.0.0.0/8, ::1, bracketed or not) or a loopback name."""
    host = host.strip().lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host(t: Table, name: str, ctx: Context) -> str:
    host = t.str(name, "127.0.0.1")
    if not is_loopback(host):
        try:
            ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            raise t.error(name, f"must be an IP address (127.0.0.1, ::1, 0.0.0.0, the board's own) or localhost, got {host!r}") from None
    return host


def _token(t: Table, name: str, ctx: Context) -> str | None:
    token = t.str(name, None)
    if token is not None and not TOKEN.fullmatch(token):
        raise t.error(name, "must be 16 to 256 characters of A-Z a-z 0-9 . _ ~ - (e.g. from: openssl rand -hex 16)")
    return token


@dataclass(frozen=True)
class WebConfig:
    enabled: bool = key(True, "the local page: live view, events, figures, /metrics")
    host: str = key("127.0.0.1", "where it listens; another address than loopback only with a token", kind=str, parse=_host)
    port: int = key(8090, "0: any free port (`edgewatch status` says which)", ge=0, le=65535)
    token: str | None = key(None, "needed off loopback; then asked of every request", kind=str, parse=_token, example="",
                            notes=("16+ characters (openssl rand -hex 16). A browser opens /?token=... once and keeps it as a",
                                   "cookie; scripts and Prometheus send `Authorization: Bearer ...`."))
    max_viewers: int = key(5, "live viewers at once; more are told it is busy", ge=1, le=50)
    live_fps: float = key(5.0, "live view pictures a second, at most (drawn only while someone watches)", gt=0, le=30)
    live_width: int = key(640, "live view width in pixels, at most", ge=160, le=3840)
    timeout_s: float = key(10.0, "a request must arrive, and each write complete, within this", gt=0, le=300)

    def check(self, t: Table) -> None:
        if self.token is None and not is_loopback(self.host):
            raise t.error("token", f"is required when host is not loopback ({self.host!r}): the page shows the camera")

    def __repr__(self) -> str:  # never the token, in a log line or a traceback
        shown = {k: v for k, v in self.__dict__.items() if k != "token"}
        return f"WebConfig({', '.join(f'{k}={v!r}' for k, v in shown.items())}, token={'set' if self.token else None})"


# -- [budget] ----------------------------------------------------------------------------------------

HARD_OVER_SOFT = 1.25
DEFAULT_TEMPERATURE_C = 75.0


def _temperature(t: Table, name: str, ctx: Context) -> float | None:
    if t.raw(name, None) is False:
        return None
    return t.number(name, DEFAULT_TEMPERATURE_C, ge=30, le=110)


@dataclass(frozen=True)
class Budgets:
    memory_mb: float | None = key(None, "soft: the variant loaded is one whose measured footprint fits; over it, caches are shed",
                                  kind=float, gt=0, le=1_000_000, example=300.0)
    memory_hard_mb: float | None = key(None, "hard: over it the daemon exits 75 so systemd restarts it clean; default: memory_mb x 1.25",
                                       kind=float, gt=0, le=1_000_000, example=400.0)
    power_w: float | None = key(None, "mean power over power_window_s", kind=float, gt=0, le=1000, example=4.0)
    power_window_s: float = key(30.0, "the window the power mean is taken over", ge=5, le=3600)
    power_scope: str = key("board", '"board": the whole board (a meter, else the CPU estimate); "process": our share above idle',
                           choices=POWER_SCOPES)
    board: str = key("auto", "power profile for the estimate: auto (from the device tree), " + ", ".join(BOARD_PROFILES),
                     choices=("auto", *BOARD_PROFILES))
    temperature_c: float | None = key(DEFAULT_TEMPERATURE_C, "hottest thermal zone (below the Pi firmware's 80 °C throttle); false: off",
                                      kind=float, parse=_temperature)
    min_fps: float = key(1.0, "the rate the application needs: lowered down to this, then threads, cheaper variants, then below it, then pause",
                         gt=0, le=120)
    ladder: bool = key(True, "step along the bundle's variants, the most accurate that fits first, before the rate goes "
                             "below min_fps; false: rate-only control")
    min_fidelity: float = key(0.9, "the ladder steps only to variants at least this faithful to the source model (their "
                                   "fidelity in the bundle); below it the rate is cut instead. 0: every variant", ge=0, le=1)

    def __post_init__(self) -> None:
        if self.memory_hard_mb is None and self.memory_mb is not None:
            object.__setattr__(self, "memory_hard_mb", self.memory_mb * HARD_OVER_SOFT)

    def check(self, t: Table) -> None:
        if t.has("memory_hard_mb") and self.memory_mb is not None and self.memory_hard_mb <= self.memory_mb:
            raise t.error("memory_hard_mb", f"must be above memory_mb ({self.memory_mb:g}), got {self.memory_hard_mb:g}")

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)
