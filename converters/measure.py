"""What a converted model costs on this machine: invoke latency, and which ops still compute in float.

Latency is measured with the runtime's own `Model` (LiteRT, XNNPACK, the given thread count) on a
real preprocessed held-out frame, after warm-up, as the median of repeated invokes. It is this
workstation's figure; the board's comes from `edgewatch bench` on the board.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from runtime.interpreter import Model
from runtime.preprocess import InputSpec, Preprocessor

log = logging.getLogger(__name__)

# Float by design in a quantized model: the boundary (de)quantizers and the NMS custom op.
_FLOAT_BY_DESIGN = {"QUANTIZE", "DEQUANTIZE", "TFLite_Detection_PostProcess", "CUSTOM"}


def latencies(targets: list[tuple[Path, InputSpec]], frame: np.ndarray, threads: int, runs: int = 20, warmup: int = 3) -> list[dict]:
    """Invoke latency of each (model file, input it takes), measured in interleaved rounds.

    Round-robin (one invoke of each model per round) so that load from other processes falls on
    all variants alike and their ratios stay meaningful on a busy machine; the minimum is reported
    beside the median as the figure least disturbed by that load, and so is the CPU time per
    invoke (all threads), which other processes do not inflate.
    """
    models = []
    for path, spec in targets:
        model = Model(path, threads=threads, input_size=(spec.width, spec.height))
        tensor, _ = Preprocessor(spec, model.input.dtype, model.input.quantization, model.input_layout)(frame)
        model.set_input(tensor)
        for _ in range(warmup):
            model.invoke()
        models.append(model)
    times: list[list[float]] = [[] for _ in models]
    cpu: list[list[float]] = [[] for _ in models]
    for _ in range(runs):
        for model, bucket, cpu_bucket in zip(models, times, cpu):
            c0, t0 = time.process_time(), time.perf_counter()
            model.invoke()
            bucket.append((time.perf_counter() - t0) * 1e3)
            cpu_bucket.append((time.process_time() - c0) * 1e3)
    out = []
    for model, bucket, cpu_bucket in zip(models, times, cpu):
        p50, p90 = np.percentile(bucket, [50, 90])
        out.append({"latency_ms": round(float(p50), 3), "latency_p90_ms": round(float(p90), 3),
                    "latency_min_ms": round(float(min(bucket)), 3), "cpu_ms": round(float(np.median(cpu_bucket)), 3),
                    "threads": model.threads, "runs": runs, "backend": model.engine})
    return out


def _undelegated(data: bytes):
    """An interpreter of `data` without XNNPACK: delegated ops would show as opaque DELEGATE nodes."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(model_content=data, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interp.allocate_tensors()
    return interp


def _ops(interp) -> list[dict]:
    return interp._get_ops_details()  # noqa: SLF001 - the only way to list ops with their tensors


def float_ops(data: bytes) -> dict[str, int]:
    """Operator name -> count, for operators whose results are float32 (quantized models only)."""
    interp = _undelegated(data)
    dtypes = {d["index"]: np.dtype(d["dtype"]) for d in interp.get_tensor_details()}
    found: Counter = Counter()
    for op in _ops(interp):
        if op["op_name"] in _FLOAT_BY_DESIGN:
            continue
        if any(dtypes.get(int(i)) == np.float32 for i in op["outputs"]):
            found[op["op_name"]] += 1
    return dict(sorted(found.items()))


# XNNPACK's sparse kernels run a float subgraph in NCHW from its first 3x3 convolution to a
# spatial MEAN or a DEPTH_TO_SPACE; a graph with neither cannot hold one, however sparse.
_SPARSE_SUBGRAPH_ENDS = {"MEAN", "DEPTH_TO_SPACE"}


def sparse_kernels(data: bytes, mode: str) -> dict:
    """Whether the file (of quantization `mode`) stores weights sparse (DENSIFY ops) and whether
    XNNPACK's sparse kernels can take any of it, with why not."""
    ops = {op["op_name"] for op in _ops(_undelegated(data))}
    stored = "DENSIFY" in ops
    quantized = mode in ("int8", "dynamic")
    possible = stored and not quantized and bool(ops & _SPARSE_SUBGRAPH_ENDS)
    if not stored:
        why = "no weights are stored sparse (the sparse encoding was no smaller)"
    elif quantized:
        why = f"XNNPACK's sparse kernels are float only; the {mode} weights are densified at load"
    elif not possible:
        why = ("the weights are densified at load: XNNPACK's sparse kernels need a subgraph ending in a spatial MEAN "
               "or DEPTH_TO_SPACE (a classifier's), which this graph does not have")
    else:
        why = "the graph has what XNNPACK's sparse kernels need; the measured latency tells whether they ran"
    return {"stored_sparse": stored, "xnnpack_sparse_possible": possible, "why": why}


def peak_rss_mb(bundle: Path, variant: str, threads: int) -> float | None:
    """Peak RSS of a fresh runtime process detecting with one variant (`edgewatch bench`).

    A process of its own, because peak RSS is per process and this one holds TensorFlow; the
    figure is what the board's memory budget compares (runtime, model, buffers, decoder).
    """
    cmd = [sys.executable, "-m", "runtime.cli", "bench", str(bundle), "--variant", variant, "--threads", str(threads),
           "--runs", "3", "--warmup", "1", "--json"]
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300, check=False)
    except subprocess.TimeoutExpired:
        log.warning("%s: %s: peak RSS not measured (bench timed out); memory budgets cannot gate this variant", bundle, variant)
        return None
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line).get("peak_rss_mb")
    last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    log.warning("%s: %s: peak RSS not measured (bench exit %d: %s); memory budgets cannot gate this variant", bundle, variant, proc.returncode, last)
    return None
