"""Compression beyond quantization: pruning a source's convolution kernels and distilling the pruned
network from the source's own outputs (network.py, prune.py, distill.py; sweep.py runs the methods
and sparsities and picks the point worth shipping)."""
