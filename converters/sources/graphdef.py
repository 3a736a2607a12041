"""TF1 frozen graphs: reading one, and cutting a sub-graph out of it as a TF2 concrete function."""

from __future__ import annotations

from pathlib import Path

from ..errors import SourceError


def read_graph_def(path: Path):
    import tensorflow as tf
    from google.protobuf.message import DecodeError

    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise SourceError(f"{path}: no such file") from None
    except OSError as exc:
        raise SourceError(f"{path}: cannot read ({exc.strerror})") from None
    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(data)
    except (DecodeError, RuntimeWarning, ValueError) as exc:
        raise SourceError(f"{path}: not a TensorFlow frozen graph (GraphDef does not parse: {exc})") from None
    if not graph_def.node:
        raise SourceError(f"{path}: not a TensorFlow frozen graph (no nodes)")
    return graph_def


def node_name(tensor_or_input: str) -> str:
    """'^a/b:1' -> 'a/b'."""
    return tensor_or_input.lstrip("^").split(":")[0]


def tensor_name(name: str) -> str:
    """'a/b' -> 'a/b:0'; 'a/b:1' stays."""
    return name if ":" in name else f"{name}:0"


def prune(graph_def, path: Path, feeds: list[str], fetches: list[str]):
    """The sub-graph from `feeds` to `fetches` as a concrete function (in graph order of both)."""
    import tensorflow as tf

    names = {n.name for n in graph_def.node}
    for t in [*feeds, *fetches]:
        if node_name(t) not in names:
            raise SourceError(f"{path}: no tensor {t!r} in the graph")

    def _import():
        tf.compat.v1.import_graph_def(graph_def, name="")

    try:
        wrapped = tf.compat.v1.wrap_function(_import, [])
        g = wrapped.graph
        return wrapped.prune(
            feeds=[g.as_graph_element(tensor_name(t)) for t in feeds],
            fetches=[g.as_graph_element(tensor_name(t)) for t in fetches],
        )
    except (ValueError, KeyError, tf.errors.OpError) as exc:
        raise SourceError(f"{path}: cannot cut the graph from {feeds} to {fetches} ({' '.join(str(exc).split())[:300]})") from None
