"""Graph -> Graph passes that take the imported float IR to what the quantizer expects.

`run_passes` is the whole pipeline, in order; each pass returns a new graph and is verified.
"""
from __future__ import annotations

from ..ir import Graph, verify
from .drop_noops import drop_noops
from .fold_batchnorm import fold_batchnorm
from .fold_pad import fold_pad
from .fold_transpose_matmul import fold_transpose_matmul
from .fuse_activation import fuse_activation

PASSES = (
    drop_noops,       # first: an identity between conv and BatchNorm/ReLU would block folding
    fold_pad,         # a zero Pad into the conv after it (grows the conv's explicit pads)
    fold_batchnorm,   # BatchNorm into the layer before it (no batch_norm kernel at runtime)
    fuse_activation,  # ReLU/clip into the producer's clamp, after BN is gone from between them
    fold_transpose_matmul,  # k^T into batch_matmul's adj_y: no transpose kernel, no buffer
)

# Passes that keep an int8 graph's numbers exactly (run on an imported int8 .tflite).
QUANTIZED_PASSES = (drop_noops, fold_pad, fold_transpose_matmul)


def run_passes(graph: Graph, quantized: bool = False) -> Graph:
    """Float IR from a frontend -> float IR with only runtime ops (see toolchain/ops.py).

    A graph that is already int8 (a quantized .tflite) only has its no-ops dropped and its
    zero pads folded (which gives the same numbers): folding BatchNorm or fusing activations
    would change numbers the model's quantization has fixed.
    """
    verify(graph)
    for p in (QUANTIZED_PASSES if quantized else PASSES):
        graph = p(graph)
        verify(graph)
    return graph


__all__ = ["run_passes", "drop_noops", "fold_batchnorm", "fold_pad", "fold_transpose_matmul",
           "fuse_activation",
           "PASSES", "QUANTIZED_PASSES"]
