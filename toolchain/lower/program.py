"""What lowering produces: one runtime_c kernel call per op, with every constant precomputed.

A KernelCall is the contract between three consumers that must agree bit for bit:
  - codegen emits `static const <params_type> <layer>_params = { .field = value, ... };`
    and the call `<kernel>(&<layer>_params, <inputs...>, <outputs...>[, scratch]);`
    (with `input_array`, <inputs...> is the one table `<layer>_inputs`, see below)
  - the golden NumPy executor (toolchain/golden.py) computes the same op from the same fields,
  - the planner (toolchain/plan) places `inputs`, `outputs` and `scratch_bytes` in the arena.

Field values: an int (a C integer field), a float (a C float field: only the float32
boundary kernels, quantize/dequantize, have one), a tuple of ints (a small struct or array,
emitted as `{a, b, ...}`), a ConstArray (a pointer to a table in flash) or None (a NULL
pointer, e.g. an absent bias).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

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


FieldValue = Optional[Union[int, float, tuple[int, ...], ConstArray]]


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
    macs: int = 0  # multiply-accumulates (conv, depthwise, fully connected); 0 otherwise
    # In place: {output index: input index}. The kernel may be given the same pointer for
    # that output and that input: it reads every input byte it needs before it writes the
    # output byte at the same address, and the output is no larger than the input (it is
    # written from the input's first byte). The planner aliases them (output offset = input
    # offset) only when this call is the input's last reader and the input is no graph
    # output; otherwise they get separate bytes, so the kernel must also work unaliased.
    # Covers: elementwise add/requantize over a dying input (same size), and depthwise conv
    # in place in NHWC, channel by channel: copy input channel c to a small scratch buffer
    # (scratch_bytes), compute output channel c from it into the input's channel-c slots;
    # with stride > 1 the output (smaller) fills the front of the input's bytes.
    # A view (reshape): the output is the input's bytes under a new shape. No code runs;
    # the planner gives both names one buffer.
    view: bool = False
    inplace: dict[int, int] = field(default_factory=dict)
    # Partial overlap, for an output in `inplace` that may not start on the input:
    # {output index: bytes}. The output then ends at most that many bytes past the input's
    # first byte (it sits below the input, its last bytes over the input's first ones; the
    # planner may overlap less, by multiples of 16). For kernels that write the output
    # front to back and read the input front to back, never writing an input byte they
    # still need; the output may be larger than the input. E.g. a depthwise conv with a
    # channel multiplier, row by row: output row r must not reach the input rows r+1.. read.
    inplace_overlap: dict[int, int] = field(default_factory=dict)
    # N-ary kernels (concat): the inputs are passed as ONE argument, a `const int8_t *const[]`
    # array of their arena addresses that codegen emits as a static table beside the params
    # (`<layer>_inputs`), instead of one argument per input. `inputs` still lists every
    # input in order, for the planner and the golden model.
    input_array: bool = False

    @property
    def const_bytes(self) -> int:
        return sum(v.nbytes for v in self.fields.values() if isinstance(v, ConstArray))


@dataclass
class Program:
    """The lowered model: the quantized NHWC graph for shapes/quant, and its calls in order."""

    graph: Graph
    calls: list[KernelCall] = field(default_factory=list)
    # Row slices (patch-based execution, toolchain/plan/patch.py): tensor -> (parent, first
    # row). The tensor is rows [row, row + H) of its 4-D N=1 parent (same W and C): its
    # bytes are the parent's from that row on. Kernels read or write it through a pointer
    # offset; the planner places the parent only.
    slices: dict[str, tuple[str, int]] = field(default_factory=dict)
