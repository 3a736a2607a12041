"""What exporters write into a model file about the model: Ultralytics' class names and input size.

Ultralytics appends a zip archive holding one `metadata.json` to the .tflite files it exports (the
flatbuffer is untouched, so any interpreter still reads the file); its ONNX exports carry the same
keys as ONNX metadata properties (read on the converter's side). The keys used: `names` (class id ->
name), `imgsz` ([height, width]), `stride`, `task`, `end2end` (NMS-free heads). Reading never fails:
a file without metadata, or with metadata that does not parse, has none.
"""

from __future__ import annotations

import ast
import io
import json
import zipfile
from pathlib import Path
from typing import Any


def parse_value(text: str) -> Any:
    """A metadata value as Ultralytics writes it: JSON, or a Python literal ("{0: 'person'}")."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


def read_tflite_metadata(path: Path) -> dict[str, Any]:
    """The metadata archive appended to a .tflite, as a dict; {} when there is none."""
    try:
        data = Path(path).read_bytes()
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            if not names:
                return {}
            value = parse_value(archive.read(names[0]).decode("utf-8", errors="replace"))
    except (OSError, zipfile.BadZipFile, KeyError, ValueError, EOFError):
        return {}
    return value if isinstance(value, dict) else {}


def class_names(metadata: dict[str, Any]) -> list[str]:
    """`names` ({0: 'a', 1: 'b'} or ['a', 'b']) as a list in class order; [] when absent."""
    names = metadata.get("names")
    if isinstance(names, str):
        names = parse_value(names)
    if isinstance(names, list):
        return [str(n) for n in names]
    if isinstance(names, dict):
        try:
            by_id = {int(k): str(v) for k, v in names.items()}
        except (TypeError, ValueError):
            return []
        if by_id and min(by_id) >= 0:
            return [by_id.get(i, str(i)) for i in range(max(by_id) + 1)]
    return []


def input_size(metadata: dict[str, Any]) -> tuple[int, int] | None:
    """(width, height) from `imgsz` ([h, w] or one number); None when absent."""
    size = metadata.get("imgsz")
    if isinstance(size, str):
        size = parse_value(size)
    if isinstance(size, int):
        return size, size
    if isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(v, int) for v in size):
        return int(size[1]), int(size[0])
    return None
