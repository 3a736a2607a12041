"""The bundle: `model.tflite` + `model.json`, the one contract between converter and runtime.

`model.json` (schema_version 1) holds everything the runtime needs to feed and read the model:

    {
      "schema_version": 1,
      "name": "person-ssdlite",
      "labels": ["person"],
      "source": {"file": "frozen_inference_graph.pb", "format": "tf_frozen_graph", "sha256": "..."},
      "input": {"width": 300, "height": 300, "color": "rgb", "resize": "stretch",
                "interpolation": "linear_legacy", "normalization": {"range": [-1, 1]}},
      "output": {"decoder": "ssd_anchors", "params": {...decoder's own...}},
      "default_variant": "int8",
      "variants": [
        {"name": "int8", "file": "model.tflite", "quantization": "int8", "size_bytes": 0,
         "sha256": "...", "input_size": [300, 300], "output": {"params": {...overrides...}},
         "metrics": {"latency_ms": 0, "threads": 2, "peak_rss_mb": 0,
                     "fidelity": {"metric": "map50", "value": 0.97}}}
      ],
      "report": "report.json"
    }

Only `schema_version`, `input` and `output` are required; a manifest with no `variants` has one
variant, `model.tflite`. A variant may override the input size and the decoder parameters (an
input-size variant needs its own anchors).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .atomic import replace_bytes
from .preprocess import COLORS, INTERPOLATIONS, RESIZES, InputSpec
from .table import SchemaError, Table

SCHEMA_VERSION = 1
MANIFEST = "model.json"
MODEL = "model.tflite"
QUANTIZATIONS = ("none", "float16", "dynamic", "int8")


class BundleError(ValueError):
    """A bundle that cannot be used; the message is one line naming the file and the cause."""


@dataclass(frozen=True)
class Variant:
    name: str
    file: Path
    quantization: str = "none"
    size_bytes: int | None = None
    sha256: str | None = None
    input_size: tuple[int, int] | None = None  # (width, height) when it differs from the bundle's
    output: dict[str, Any] = field(default_factory=dict)  # {"decoder"?, "params"?}: see Bundle.decoder_for
    metrics: dict[str, Any] = field(default_factory=dict)  # latency_ms, threads, fidelity, peak_rss_mb


@dataclass(frozen=True)
class Bundle:
    path: Path  # the bundle folder (or the bare .tflite)
    name: str
    input: InputSpec
    decoder: str
    decoder_params: dict[str, Any]
    labels: list[str]
    variants: list[Variant]
    default_variant: str
    source: dict[str, Any] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)

    def variant(self, name: str | None = None) -> Variant:
        name = name or self.default_variant
        for v in self.variants:
            if v.name == name:
                return v
        raise BundleError(f"{self.path}: no variant {name!r} (has: {', '.join(v.name for v in self.variants)})")

    def input_for(self, variant: Variant) -> InputSpec:
        if variant.input_size is None:
            return self.input
        w, h = variant.input_size
        return replace(self.input, width=w, height=h)

    def decoder_for(self, variant: Variant) -> tuple[str, dict[str, Any]]:
        """(decoder name, params) for a variant. A variant's `output` has the shape of the bundle's:
        with its own `decoder` (e.g. TFLite_Detection_PostProcess appended) it replaces the bundle's
        decoder and parameters; with `params` only, those override the bundle's one by one."""
        params = variant.output.get("params", {})
        if "decoder" in variant.output:
            return variant.output["decoder"], dict(params)
        return self.decoder, {**self.decoder_params, **params}


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify_file(variant: Variant, loaded_sha256: str | None = None) -> None:
    """The variant's file is the one the converter measured (`loaded_sha256`: of the bytes already
    read, else the file is hashed). A model changed or damaged since (a bad copy, a failing card, a
    hand edit) is refused, never served with another model's figures."""
    if not variant.sha256 or variant.file is None:
        return
    actual = loaded_sha256 or sha256_file(variant.file)
    if actual != variant.sha256:
        raise BundleError(f"{variant.file}: sha256 {actual[:16]}... differs from model.json's {variant.sha256[:16]}...: "
                          "the file changed after conversion; convert or deploy the bundle again")


def parse_input(t: Table) -> InputSpec:
    width = t.number("width", integer=True, gt=0)
    height = t.number("height", integer=True, gt=0)
    color = t.str("color", "rgb", COLORS)
    channels = 1 if color == "gray" else 3
    norm = t.table("normalization", {})
    if norm.has("range") and (norm.has("mean") or norm.has("std")):
        raise norm.error("range", "give either range or mean/std, not both")
    if norm.has("range"):
        lo, hi = norm.numbers("range", length=2)
        if hi == lo:
            raise norm.error("range", "low and high must differ")
        m, s = InputSpec.range_to_mean_std(lo, hi)
        mean, std = (m,) * channels, (s,) * channels
    else:
        mean = tuple(norm.numbers("mean", [0.0] * channels))
        std = tuple(norm.numbers("std", [255.0] * channels))
        for key, vals in (("mean", mean), ("std", std)):
            if len(vals) == 1:
                vals = vals * channels
            if len(vals) != channels:
                raise norm.error(key, f"must have {channels} values for color {color!r}, got {len(vals)}")
        mean = mean * channels if len(mean) == 1 else mean
        std = std * channels if len(std) == 1 else std
        if any(v == 0 for v in std):
            raise norm.error("std", "must not contain 0")
    norm.done()
    spec = InputSpec(
        width=width,
        height=height,
        color=color,
        resize=t.str("resize", "stretch", RESIZES),
        interpolation=t.str("interpolation", "linear", INTERPOLATIONS),
        mean=tuple(mean),
        std=tuple(std),
        pad_value=t.number("pad_value", 114, integer=True, ge=0, le=255),
    )
    # Recorded by the converter for people reading the manifest; the model file is the truth.
    t.raw("dtype", None)
    t.raw("quantization", None)
    t.done()
    return spec


def input_to_json(spec: InputSpec) -> dict[str, Any]:
    """The manifest's `input` section for a spec: the one writer (parse_input is the one reader)."""
    if len(set(spec.mean)) == 1 and len(set(spec.std)) == 1:
        # as a range when every channel scales alike: how people write it
        lo = -spec.mean[0] / spec.std[0]
        normalization: dict[str, Any] = {"range": [round(lo, 6), round(lo + 255.0 / spec.std[0], 6)]}
    else:
        normalization = {"mean": list(spec.mean), "std": list(spec.std)}
    return {
        "width": spec.width,
        "height": spec.height,
        "color": spec.color,
        "resize": spec.resize,
        "interpolation": spec.interpolation,
        "normalization": normalization,
        "pad_value": spec.pad_value,
    }


def _parse_variant(t: Table, folder: Path) -> Variant:
    name = t.str("name")
    file = t.str("file")
    if "/" in file or "\\" in file or file.startswith("."):
        raise t.error("file", f"must be a file name inside the bundle, got {file!r}")
    size = t.raw("input_size", None)
    if size is not None:
        w, h = t.numbers("input_size", length=2)
        if w <= 0 or h <= 0 or not float(w).is_integer() or not float(h).is_integer():
            raise t.error("input_size", f"must be two positive integers, got {size!r}")
        size = (int(w), int(h))
    out = t.table("output", {})
    output = {}
    if out.has("decoder"):
        output["decoder"] = out.str("decoder")
    params = out.raw("params", {})
    if not isinstance(params, dict):
        raise out.error("params", "must be an object")
    if params:
        output["params"] = params
    out.done()
    metrics = t.raw("metrics", {})
    if not isinstance(metrics, dict):
        raise t.error("metrics", "must be an object")
    size_bytes = t.raw("size_bytes", None)
    if size_bytes is not None:
        size_bytes = t.number("size_bytes", integer=True, ge=0)
    v = Variant(
        name=name,
        file=folder / file,
        quantization=t.str("quantization", "none", QUANTIZATIONS),
        size_bytes=size_bytes,
        sha256=t.str("sha256", None),
        input_size=size,
        output=output,
        metrics=metrics,
    )
    t.done()
    return v


def load_manifest(manifest_path: Path) -> Bundle:
    manifest_path = Path(manifest_path)
    folder = manifest_path.parent
    where = str(manifest_path)
    try:
        data = json.loads(manifest_path.read_text())
    except FileNotFoundError:
        raise BundleError(f"{manifest_path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{manifest_path}: not valid JSON ({exc})") from None
    try:
        top = Table(data, where)
        version = top.number("schema_version", integer=True)
        if version != SCHEMA_VERSION:
            raise top.error("schema_version", f"{version} is not supported by this runtime (it reads {SCHEMA_VERSION})")
        spec = parse_input(top.table("input"))
        out = top.table("output")
        decoder = out.str("decoder")
        params = out.raw("params", {})
        if not isinstance(params, dict):
            raise out.error("params", "must be an object")
        out.done()
        labels = top.list("labels", [], str)
        variants_raw = top.raw("variants", None)
        if variants_raw is None:
            variants = [Variant(name="default", file=folder / MODEL)]
        else:
            if not isinstance(variants_raw, list) or not variants_raw:
                raise top.error("variants", "must be a non-empty list")
            variants = [_parse_variant(Table(v, where, f"variants[{i}]"), folder) for i, v in enumerate(variants_raw)]
            names = [v.name for v in variants]
            if len(set(names)) != len(names):
                raise top.error("variants", f"variant names must be unique, got {names}")
        default = top.str("default_variant", None)
        if default is None:
            default = next((v.name for v in variants if v.file.name == MODEL), variants[0].name)
        elif default not in {v.name for v in variants}:
            raise top.error("default_variant", f"{default!r} is not a variant name")
        source = top.raw("source", {})
        top.raw("name", None)
        top.raw("report", None)
        top.raw("converter", None)
        top.done()
    except SchemaError as exc:
        raise BundleError(str(exc)) from None
    for v in variants:
        if not v.file.is_file():
            raise BundleError(f"{v.file}: missing (variant {v.name!r} of {manifest_path})")
    return Bundle(
        path=folder,
        name=str(data.get("name") or folder.name),
        input=spec,
        decoder=decoder,
        decoder_params=params,
        labels=labels,
        variants=variants,
        default_variant=default,
        source=source if isinstance(source, dict) else {},
        manifest=data,
    )


def read_labels(path: Path) -> list[str]:
    """One label per line; blank lines kept as '' so indices stay aligned with class ids."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise BundleError(f"{path}: cannot read labels ({exc.strerror})") from None
    while lines and not lines[-1].strip():
        lines.pop()
    return [line.strip() for line in lines]


def find_manifest(path: Path) -> Path | None:
    """The manifest for a bundle folder, a model.json, or a .tflite with a model.json beside it."""
    path = Path(path)
    if path.is_dir():
        return path / MANIFEST
    if path.name.endswith(".json"):
        return path
    return None


def write_manifest(folder: Path, manifest: dict[str, Any]) -> Path:
    target = Path(folder) / MANIFEST
    replace_bytes(target, (json.dumps(manifest, indent=2) + "\n").encode())
    return target
