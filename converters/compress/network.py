"""A source's network as one flat frozen graph whose convolution kernels can be replaced or trained.

Every source (frozen graph, Keras, SavedModel, ONNX through onnx2tf) is, once converted, a concrete
function from the preprocessed input to its raw outputs. Freezing it with its nested functions
inlined gives one GraphDef in which each convolution reads its kernel from a constant: the same
handle on the weights whatever the source's format. Pruning rewrites those constants; distillation
imports the graph with the kernels mapped to variables, so gradients reach them.

Prunable kernels are the `Conv2D` ones, except the first convolutions the image meets (the first
layer: few weights, and all later layers depend on it). Depthwise kernels are not `Conv2D` and stay
dense: they hold a few per cent of the weights, and a zeroed depthwise weight removes a channel's
whole spatial filter.

Zeros make a file smaller but not faster (XNNPACK computes them: measure.sparse_kernels). Removing
whole channels does both: in an expand -> depthwise -> project block (MobileNetV2's inverted
residual, SSDLite's extra layers) the expanded channels are private to the block, so dropping some
narrows three convolutions and the per-channel ops between them, and nothing outside changes shape.
`narrowed()` chooses, per block, from the expanded channels' mean and covariance over the
calibration pixels, the channels whose loss the others make up best (greedy backward elimination),
and refits a 1x1 project to the kept ones: the least-squares weights that best reproduce the
block's original output, and what remains of the mean goes to the project's bias (its batch
norm's mean or its BiasAdd: a block whose project has neither is not narrowed). Dropping the least
used channels without a refit left a detector that found nothing at 50 %; with it, distillation
starts from one that still detects.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import SourceError


@dataclass(frozen=True)
class Kernel:
    name: str  # the Const node holding it
    shape: tuple[int, ...]  # [kh, kw, in, out]


def _tensor(name: str) -> str:
    return name if ":" in name else f"{name}:0"


def _consumers(graph_def) -> dict[str, list]:
    """Node name -> the nodes reading it."""
    consumers: dict[str, list] = {}
    for n in graph_def.node:
        for i in n.input:
            consumers.setdefault(i.lstrip("^").split(":")[0], []).append(n)
    return consumers


def _next(consumers: dict, node):
    """The one op reading `node` (through Identity nodes), or None."""
    users = consumers.get(node.name, [])
    while len(users) == 1 and users[0].op == "Identity":
        users = consumers.get(users[0].name, [])
    return users[0] if len(users) == 1 else None


def _const_behind(nodes: dict, tensor: str):
    """The Const node a tensor reads, through Identity nodes; None when it is computed."""
    node = nodes.get(tensor.lstrip("^").split(":")[0])
    while node is not None and node.op == "Identity":
        node = nodes.get(node.input[0].lstrip("^").split(":")[0])
    return node if node is not None and node.op == "Const" else None


# Ops that act on each channel alone (their parameters, if any, one value per channel): a block's
# expanded channels pass through these between its convolutions.
_PER_CHANNEL = {"FusedBatchNorm", "FusedBatchNormV3", "BiasAdd", "Relu", "Relu6", "Identity"}


@dataclass(frozen=True)
class Block:
    expand: str  # the Conv2D making the channels
    between: tuple[str, ...]  # per-channel ops, expand to depthwise and depthwise to project
    depthwise: str
    project: str  # the Conv2D reading them


RIDGE = 1e-2  # of the fitted channels' mean variance


def _ridged(covariance: np.ndarray) -> tuple[np.ndarray, float]:
    """(the covariance with RIDGE of its mean variance added to the diagonal, that amount)."""
    ridge = RIDGE * np.trace(covariance) / len(covariance) + 1e-12
    return covariance + ridge * np.eye(len(covariance)), ridge


@dataclass(frozen=True)
class ChannelStats:
    """What enters a block's project convolution, per expanded channel, over calibration pixels."""
    mean: np.ndarray  # [C]
    covariance: np.ndarray  # [C, C]

    def select(self, weights: np.ndarray, count: int) -> np.ndarray:
        """The `count` channels (sorted indices) from which x @ weights ([C, O]) is best refitted:
        greedy backward elimination, each step dropping the channel whose loss the others make up
        best (its fitted weights' energy over the inverse covariance's diagonal: the residual a
        least-squares fit gains without it), with the inverse and the weights downdated in place."""
        inverse = np.linalg.inv(_ridged(self.covariance)[0])
        fitted = inverse @ (self.covariance @ weights.astype(np.float64))
        alive = np.arange(len(self.mean))
        while len(alive) > count:
            diag = np.diag(inverse)
            worst = int(np.argmin(np.square(fitted).sum(axis=1) / diag))
            column = inverse[:, worst] / diag[worst]
            fitted = fitted - np.outer(column, fitted[worst])
            inverse = inverse - np.outer(column, inverse[worst])
            rest = np.arange(len(alive)) != worst
            alive, fitted, inverse = alive[rest], fitted[rest], inverse[np.ix_(rest, rest)]
        return np.sort(alive)

    def refit(self, weights: np.ndarray, keep: np.ndarray) -> np.ndarray:
        """[K, O] weights on the kept channels that best reproduce x @ weights ([C, O]) around the
        mean: least squares on the covariance, regularised towards the kept channels' own weights
        so that channels seen on few pixels (the smallest feature maps) or nearly constant keep
        theirs. Keeping every channel gives the weights back unchanged."""
        w = weights.astype(np.float64)
        kk, ridge = _ridged(self.covariance[np.ix_(keep, keep)])
        return np.linalg.solve(kk, self.covariance[keep] @ w + ridge * w[keep])


def _first_convolutions(consumers: dict, input_name: str) -> set[str]:
    """The convolutions nearest the input: every path from it, followed until a convolution."""
    seen, first = set(), set()
    todo = [input_name.split(":")[0]]
    while todo:
        name = todo.pop()
        for user in consumers.get(name, []):
            if user.name in seen:
                continue
            seen.add(user.name)
            if user.op in ("Conv2D", "DepthwiseConv2dNative"):
                first.add(user.name)
            else:
                todo.append(user.name)
    return first


class FrozenNetwork:
    def __init__(self, graph_def, input_name: str, output_names: list[str], structure, input_tensor, path):
        self.graph_def, self.input_name, self.output_names = graph_def, input_name, output_names
        self.structure, self.input_tensor, self.path = structure, input_tensor, path
        nodes = {n.name: n for n in self.graph_def.node}
        self._nodes = nodes
        self._consumers = _consumers(graph_def)
        first = _first_convolutions(self._consumers, input_name)
        kernels: dict[str, Kernel] = {}
        self.first_layer = 0  # weights of the first convolutions, kept dense
        for node in self.graph_def.node:
            if node.op != "Conv2D":
                continue
            const = _const_behind(nodes, node.input[1])
            if const is None or const.name in kernels:
                continue
            shape = tuple(d.size for d in const.attr["value"].tensor.tensor_shape.dim)
            if len(shape) != 4:
                continue
            if node.name in first:
                self.first_layer += int(np.prod(shape))
                continue
            kernels[const.name] = Kernel(const.name, shape)
        if not kernels:
            raise SourceError(f"{path}: cannot be pruned: it has no convolution kernels to prune (only Conv2D weights are)")
        self.kernels = kernels
        self._consts = {n.name: n for n in self.graph_def.node if n.name in kernels}
        self.other = sum(  # every other weight: depthwise kernels, biases, normalisation
            int(np.prod([d.size for d in n.attr["value"].tensor.tensor_shape.dim] or [1]))
            for n in self.graph_def.node
            if n.op == "Const" and n.name not in kernels and n.attr["value"].tensor.dtype == 1  # DT_FLOAT
        ) - self.first_layer

    @classmethod
    def of(cls, function, path) -> FrozenNetwork:
        """The network of a concrete function (one image input, structured outputs)."""
        import tensorflow as tf
        from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

        try:
            frozen = convert_variables_to_constants_v2(function, aggressive_inlining=True)
        except (ValueError, TypeError, tf.errors.OpError) as exc:
            raise SourceError(f"{path}: cannot be pruned: its network does not freeze into one graph ({' '.join(str(exc).split())[:200]})") from None
        graph_def = frozen.graph.as_graph_def()
        if graph_def.library.function:
            raise SourceError(f"{path}: cannot be pruned: its network keeps nested functions after freezing")
        return cls(graph_def, frozen.inputs[0].name, [t.name for t in frozen.outputs], function.structured_outputs,
                   function.inputs[0], path)

    @property
    def weights(self) -> int:
        return self.prunable + self.first_layer + self.other

    # -- channels ------------------------------------------------------------------------------

    def blocks(self) -> list[Block]:
        """The expand -> depthwise -> project blocks whose expanded channels go nowhere else and
        whose project has a bias to take the dropped channels' mean."""
        consumers = self._consumers

        def follow(node, until: str):
            between = []
            while True:
                users = consumers.get(node.name, [])
                if len(users) != 1:
                    return None, between
                node = users[0]
                if node.op == until:
                    return node, between
                if node.op not in _PER_CHANNEL:
                    return None, between
                between.append(node.name)

        out = []
        for expand in self.graph_def.node:
            kernel = _const_behind(self._nodes, expand.input[1]) if expand.op == "Conv2D" else None
            if kernel is None or kernel.name not in self.kernels:
                continue  # not a convolution with a constant kernel, or the first layer (kept whole)
            depthwise, first = follow(expand, "DepthwiseConv2dNative")
            if depthwise is None or _const_behind(self._nodes, depthwise.input[1]) is None:
                continue
            if self._shape(depthwise.input[1])[3] != 1:
                continue  # a channel multiplier: its outputs are not one per channel
            project, second = follow(depthwise, "Conv2D")
            if project is None or _const_behind(self._nodes, project.input[1]) is None:
                continue
            after = _next(consumers, project)
            if after is None or not (after.op.startswith("FusedBatchNorm") or after.op == "BiasAdd"):
                continue
            out.append(Block(expand.name, tuple(first + second), depthwise.name, project.name))
        return out

    def require_blocks(self) -> list[Block]:
        blocks = self.blocks()
        if not blocks:
            raise SourceError(f"{self.path}: cannot be pruned by channels: it has no expand -> depthwise -> project blocks "
                              "(MobileNetV2-style) whose channels are private")
        return blocks

    def _shape(self, tensor: str) -> tuple[int, ...]:
        return tuple(d.size for d in _const_behind(self._nodes, tensor).attr["value"].tensor.tensor_shape.dim)

    def channel_activity(self, inputs: list[np.ndarray]) -> list[ChannelStats]:
        """Per block, the statistics of what enters its project convolution, over every pixel of
        these inputs."""
        import tensorflow as tf

        blocks = self.require_blocks()
        graph = tf.Graph()
        with graph.as_default():
            x = tf.compat.v1.placeholder(tf.float32, self.input_tensor.shape)
            tf.compat.v1.import_graph_def(self.graph_def, name="", input_map={self.input_name: x})
        fetches = [_tensor(self._nodes[b.project].input[0]) for b in blocks]
        sums = [(0.0, 0.0, 0)] * len(blocks)
        with tf.compat.v1.Session(graph=graph) as session:
            for tensor in inputs:
                pixels = [v.reshape(-1, v.shape[-1]).astype(np.float64) for v in session.run(fetches, {x: tensor})]
                sums = [(total + p.sum(axis=0), moment + p.T @ p, n + len(p)) for (total, moment, n), p in zip(sums, pixels)]
        return [ChannelStats(total / n, moment / n - np.outer(total / n, total / n)) for total, moment, n in sums]

    def narrowed(self, fraction: float, activity: list[ChannelStats]) -> tuple[FrozenNetwork, int]:
        """(the network with `fraction` of every block's expanded channels removed, weights removed);
        `activity`: channel_activity() on calibration inputs."""
        import tensorflow as tf

        blocks = self.require_blocks()
        graph_def = copy.deepcopy(self.graph_def)
        nodes = {n.name: n for n in graph_def.node}
        consumers = _consumers(graph_def)

        def value(tensor: str) -> np.ndarray:
            return tf.make_ndarray(_const_behind(nodes, tensor).attr["value"].tensor)

        def put(tensor: str, array: np.ndarray) -> None:
            const = _const_behind(nodes, tensor).attr["value"].tensor
            const.CopyFrom(tf.make_tensor_proto(array.astype(tf.dtypes.as_dtype(const.dtype).as_numpy_dtype)))

        for b, stats in zip(blocks, activity):
            expand, project = nodes[b.expand], nodes[b.project]
            kernel, weights = value(expand.input[1]), value(project.input[1])
            channels = kernel.shape[3]
            count = max(1, round(channels * (1 - fraction)))
            if weights.shape[:2] == (1, 1):
                keep = stats.select(weights[0, 0], count)
                kept = stats.refit(weights[0, 0], keep)[None, None]
            else:  # no refit for a wider project: the channels that vary most, weighted by what they feed it
                importance = np.diag(stats.covariance) * np.square(weights).sum(axis=(0, 1, 3))
                keep = np.sort(np.argsort(-importance, kind="stable")[:count])
                kept = weights[:, :, keep, :]
            # what the channels gave the output on average, less what the kept ones now give (exact for a 1x1 project)
            shift = stats.mean @ weights.sum(axis=(0, 1)) - stats.mean[keep] @ kept.sum(axis=(0, 1))
            after = _next(consumers, project)  # blocks() saw to it: a batch norm or a BiasAdd
            if after.op == "BiasAdd":
                put(after.input[1], value(after.input[1]) + shift)
            else:
                put(after.input[3], value(after.input[3]) - shift)
            put(expand.input[1], kernel[..., keep])
            for name in b.between:
                for tensor in nodes[name].input[1:]:
                    if _const_behind(nodes, tensor) is not None and value(tensor).shape == (channels,):
                        put(tensor, value(tensor)[keep])
            put(nodes[b.depthwise].input[1], value(nodes[b.depthwise].input[1])[:, :, keep, :])
            put(project.input[1], kept)
        narrowed = FrozenNetwork(graph_def, self.input_name, self.output_names, self.structure, self.input_tensor, self.path)
        return narrowed, self.weights - narrowed.weights

    def values(self) -> dict[str, np.ndarray]:
        """The kernels as the source has them (fresh copies)."""
        import tensorflow as tf

        return {name: tf.make_ndarray(node.attr["value"].tensor).copy() for name, node in self._consts.items()}

    @property
    def prunable(self) -> int:
        return sum(int(np.prod(k.shape)) for k in self.kernels.values())

    def function(self, values: dict[str, np.ndarray]) -> tuple[Any, Any]:
        """(concrete function, its trackable) of the network with these kernels, taking the source's
        input and returning its structured outputs."""
        import tensorflow as tf

        graph_def = copy.deepcopy(self.graph_def)
        for node in graph_def.node:
            if node.name in values:
                node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(np.asarray(values[node.name], np.float32)))

        def _import():
            tf.compat.v1.import_graph_def(graph_def, name="")

        wrapped = tf.compat.v1.wrap_function(_import, [])
        g = wrapped.graph
        pruned = wrapped.prune(feeds=[g.as_graph_element(self.input_name)], fetches=[g.as_graph_element(o) for o in self.output_names])
        structure = self.structure
        spec = tf.TensorSpec(self.input_tensor.shape, tf.float32, name="input")

        @tf.function(input_signature=[spec])
        def network(x):
            return tf.nest.pack_sequence_as(structure, pruned(x))

        return network.get_concrete_function(), network

    def trainable(self, values: dict[str, np.ndarray]):
        """(function x -> structured outputs, {kernel name: tf.Variable}): the kernels as variables."""
        import tensorflow as tf

        variables = {name: tf.Variable(np.asarray(v, np.float32), name=name.replace("/", "_")) for name, v in values.items()}
        graph_def = self.graph_def
        input_name, outputs, structure = self.input_name, self.output_names, self.structure

        def _import(x):
            mapping = {f"{name}:0": var.read_value() for name, var in variables.items()}
            return tf.compat.v1.import_graph_def(graph_def, name="", input_map={input_name: x, **mapping}, return_elements=outputs)

        wrapped = tf.compat.v1.wrap_function(_import, [tf.TensorSpec(self.input_tensor.shape, tf.float32)])

        def run(x):
            return tf.nest.pack_sequence_as(structure, wrapped(x))

        return run, variables
