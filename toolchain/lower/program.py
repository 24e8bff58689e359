"""What lowering produces: one runtime_c kernel call per op, with every constant precomputed.

A KernelCall is the contract between three consumers that must agree bit for bit:
  - codegen emits `static const <params_type> <layer>_params = { .field = value, ... };`
    and the call `<kernel>(&<layer>_params, <inputs...>, <outputs...>[, scratch]);`
  - the golden NumPy executor (toolchain/golden.py) computes the same op from the same fields,
  - the planner (toolchain/plan) places `inputs`, `outputs` and `scratch_bytes` in the arena.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

import numpy as np

from ..ir import Graph


@dataclass
class ConstArray:
    """A constant table emitted into flash as `static const <ctype> <layer>_<field>[]`."""

    ctype: str  # "int8_t" | "int16_t" | "int32_t"
    data: np.ndarray  # flattened in C order when emitted

    @property
    def nbytes(self) -> int:
        return int(self.data.size) * np.dtype(self.data.dtype).itemsize


FieldValue = Union[int, tuple[int, ...], ConstArray]


@dataclass
class KernelCall:
    name: str  # source node name (for comments, the report and errors)
    op: str  # IR op (toolchain/ops.py)
    kernel: str  # C function, e.g. "edgec_conv2d_s8"
    params_type: str  # C struct, e.g. "edgec_conv2d_params"
    fields: dict[str, FieldValue]  # C struct fields in declaration order
    inputs: list[str]  # activation tensor names, passed in this order
    outputs: list[str]
    scratch_bytes: int = 0  # > 0: an int8 scratch buffer is passed as the last argument
    macs: int = 0

    @property
    def const_bytes(self) -> int:
        return sum(v.nbytes for v in self.fields.values() if isinstance(v, ConstArray))


@dataclass
class Program:
    """The lowered model: the quantized NHWC graph for shapes/quant, and its calls in order."""

    graph: Graph
    calls: list[KernelCall] = field(default_factory=list)
