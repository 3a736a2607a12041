"""In-place edits of a real .tflite, to present one model as different exporters lay it out.

Only same-size edits (reordering the subgraph's output list, renaming a tensor to a name of the
same length), so every offset in the flatbuffer stays valid.
"""

from __future__ import annotations

import struct

from runtime.interpreter import _table_field, _u32, _vector


def _subgraph(data: bytes) -> int:
    root = _u32(data, 0)
    start, _ = _vector(data, _table_field(data, root, 2), 4)
    return start + _u32(data, start)


def output_indices(data: bytes) -> list[int]:
    start, count = _vector(data, _table_field(data, _subgraph(data), 2), 4)
    return [struct.unpack_from("<i", data, start + 4 * i)[0] for i in range(count)]


def reorder_outputs(data: bytes, order: list[int]) -> bytes:
    """Outputs listed as [old[order[0]], old[order[1]], ...]."""
    out = bytearray(data)
    old = output_indices(data)
    start, _ = _vector(data, _table_field(data, _subgraph(data), 2), 4)
    for i, j in enumerate(order):
        struct.pack_into("<i", out, start + 4 * i, old[j])
    return bytes(out)


def rename_tensor(data: bytes, tensor_index: int, new_name: str) -> bytes:
    out = bytearray(data)
    start, _ = _vector(data, _table_field(data, _subgraph(data), 0), 4)
    tensor = start + 4 * tensor_index + _u32(data, start + 4 * tensor_index)
    field = _table_field(data, tensor, 3)
    s = field + _u32(data, field)
    length = _u32(data, s)
    name = new_name.encode()
    if len(name) > length:
        raise ValueError(f"{new_name!r} is longer than the {length} bytes available")
    out[s + 4 : s + 4 + length] = name.ljust(length, b"_")
    return bytes(out)
