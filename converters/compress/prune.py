"""Which weights to zero: masks for global magnitude, layer-wise magnitude and random pruning.

Each method zeroes a share s of the weights it prunes (exactly round(s * n) for global; rounded per
kernel for the others), so two methods at one sparsity remove the same number of weights, give or
take the rounding, and differ only in which:
- global: the smallest |w| over all prunable kernels together (layers with small weights lose more);
- layer: the smallest |w| within each kernel, each kernel at sparsity s;
- random: a seeded random choice within each kernel, each at sparsity s (the baseline).
Ties in |w| are broken by position, so a mask is the same on every run.
"""

from __future__ import annotations

import numpy as np

METHODS = ("global", "layer", "random")


def _smallest(magnitudes: np.ndarray, count: int) -> np.ndarray:
    """Boolean mask (True: kept) that drops the `count` smallest entries of a flat array."""
    keep = np.ones(magnitudes.size, bool)
    if count > 0:
        keep[np.argsort(magnitudes, kind="stable")[:count]] = False
    return keep


def masks(kernels: dict[str, np.ndarray], method: str, sparsity: float, seed: int = 0) -> dict[str, np.ndarray]:
    """{name: bool array of the kernel's shape, True where the weight is kept}."""
    if method not in METHODS:
        raise ValueError(f"pruning method {method!r} is not one of {', '.join(METHODS)}")
    if not 0 <= sparsity < 1:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    if method == "global":
        flat = np.concatenate([np.abs(k).reshape(-1) for k in kernels.values()])
        keep = _smallest(flat, round(sparsity * flat.size))
        out, start = {}, 0
        for name, k in kernels.items():
            out[name] = keep[start:start + k.size].reshape(k.shape)
            start += k.size
        return out
    rng = np.random.default_rng(seed)
    out = {}
    for name, k in kernels.items():
        order = np.abs(k).reshape(-1) if method == "layer" else rng.random(k.size)
        out[name] = _smallest(order, round(sparsity * k.size)).reshape(k.shape)
    return out


def apply(kernels: dict[str, np.ndarray], keep: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The kernels with the masked weights set to zero (the others bit-identical)."""
    return {name: np.where(keep[name], k, np.float32(0)).astype(k.dtype) for name, k in kernels.items()}
