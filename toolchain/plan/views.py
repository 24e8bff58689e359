"""Buffers shared by several tensor names: reshape views and zero-copy concatenation.

    concat_slices(program) -> {concat call index: byte offset of each input in its output}
    buffer_roots(program, slices) -> {name: (root, byte offset in the root)}

A reshape (KernelCall.view) is its input's bytes under another shape. A concatenation whose
inputs are contiguous slices of its output (outer_size 1: the axis is the outermost
non-trivial one) and need no requantization can be elided: each producer writes its output
straight into its slice, and the concat call runs no code. Which concats are elided is the
planner's choice (plan_memory(concat=...), Plan.zero_copy); the Program keeps the concat
call, so the golden model and the reference semantics are unchanged.

The channel-axis case (outer_size > 1) is strided: it would need producers that write with
an output row stride, which no kernel has yet, so it keeps its copy.
"""
from __future__ import annotations

import numpy as np

from ..lower.program import Program

IDENTITY = (1 << 30, 1)  # concat's (multiplier, shift) of an input with the output's quant


def _resolve(parent: dict[str, tuple[str, int]], name: str) -> tuple[str, int]:
    offset = 0
    while name in parent:
        name, step = parent[name]
        offset += step
    return name, offset


def concat_slices(program: Program) -> dict[int, list[int]]:
    """The concat calls that can be elided, with each input's byte offset in the output.

    Legal when: the kernel copies contiguous blocks (outer_size 1) without requantizing;
    every input is a whole buffer of its own (not a graph input, not a constant, not
    already a slice of another concat, not read twice by this concat), so its producer
    can be given the slice's address."""
    graph = program.graph
    inputs = set(graph.inputs)
    parent: dict[str, tuple[str, int]] = {}
    slices: dict[int, list[int]] = {}
    for i, call in enumerate(program.calls):
        if call.view:
            parent[call.outputs[0]] = (call.inputs[0], 0)
            continue
        if call.kernel != "edgec_concat_s8" or int(call.fields.get("outer_size", 0)) != 1:
            continue
        f = call.fields
        out = call.outputs[0]
        mults, shifts, offs = ([int(v) for v in np.asarray(f[k].data).reshape(-1)]
                               for k in ("multiplier", "shift", "input_offset"))
        if any((m, s) != IDENTITY or o != -int(f["output_offset"])
               for m, s, o in zip(mults, shifts, offs)):
            continue
        roots, starts, pos = [], [], 0
        for name in call.inputs:
            root, shift = _resolve(parent, name)
            tensor = graph.tensors[root]
            if (shift or root in inputs or tensor.is_const or root in roots
                    or tensor.nbytes != graph.tensors[name].nbytes
                    or _resolve(parent, out)[0] == root):
                break
            roots.append(root)
            starts.append(pos)
            pos += tensor.nbytes
        else:
            if pos == graph.tensors[out].nbytes:
                for root, start in zip(roots, starts):
                    parent[root] = (out, start)
                slices[i] = starts
    return slices


def buffer_roots(program: Program, slices: dict[int, list[int]] | None = None
                 ) -> dict[str, tuple[str, int]]:
    """{name: (the tensor whose bytes it is, byte offset in it)} for every view and every
    input of an elided concat (`slices`), following chains."""
    slices = slices or {}
    parent: dict[str, tuple[str, int]] = {}
    for i, call in enumerate(program.calls):
        if call.view:
            parent[call.outputs[0]] = (call.inputs[0], 0)
        elif i in slices:
            for name, start in zip(call.inputs, slices[i]):
                root, _ = _resolve(parent, name)
                parent[root] = (call.outputs[0], start)
    return {name: _resolve(parent, name) for name in parent}


def view_roots(program: Program, slices: dict[int, list[int]] | None = None) -> dict[str, str]:
    """{name: the tensor whose bytes it is} (buffer_roots without the offsets)."""
    return {name: root for name, (root, _) in buffer_roots(program, slices).items()}
