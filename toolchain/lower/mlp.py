"""Token-blocked MLP: fully_connected -> [lookup-table activation, e.g. GELU] ->
fully_connected as one call that runs a block of tokens at a time (MCUFormer's operator
library), so the hidden layer ([tokens, 4 x width] in a ViT) is never whole in RAM.

`fuse_mlp(program, block)` replaces each such chain over two or more tokens whose hidden
layer is wider than its input (the hidden tensors read by the next call only) by one
edgec_mlp_s8 call with a scratch of block x hidden int8 values: for tokens
[t, t + block) it runs the first layer into the scratch, the table over it in place and the
second layer into the output rows. Each token's row is computed with exactly the unfused
kernels' arithmetic, so the bytes are the unfused program's.

Token overwriting: a block's input rows are all read before its output rows are written, and
output row r ends at or before input row r's end when the output is no wider than the input,
so the output may be given the input's bytes (KernelCall.inplace) when the input dies there.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from .program import KernelCall, Program

KERNEL = "edgec_mlp_s8"
PARAMS = "edgec_mlp_params"
FC = "edgec_fully_connected_s8"
DEFAULT_BLOCK = 8  # tokens per block: scratch block x hidden bytes
FC_FIELDS = ("input_offset", "output_offset", "act_min", "act_max", "weights", "bias",
             "output_multiplier", "output_shift")


def _only_reader(program: Program, consumers, name: str) -> Optional[int]:
    readers = consumers.get(name, [])
    if name in program.graph.outputs or len(readers) != 1:
        return None
    return readers[0]


def _fused(fc1: KernelCall, table: Optional[KernelCall], fc2: KernelCall, block: int
           ) -> KernelCall:
    f1, f2 = fc1.fields, fc2.fields
    rows, width, out_width = int(f1["rows"]), int(f1["in_depth"]), int(f2["out_depth"])
    hidden = int(f1["out_depth"])
    block = max(1, min(int(block), rows))
    fields = {"rows": rows, "in_depth": width, "hidden": hidden, "out_depth": out_width,
              "block": block,
              **{f"fc1_{k}": f1[k] for k in FC_FIELDS},
              "table": table.fields["table"] if table is not None else None,
              **{f"fc2_{k}": f2[k] for k in FC_FIELDS}}
    return KernelCall(fc2.name, "mlp", KERNEL, PARAMS, fields, inputs=[fc1.inputs[0]],
                      outputs=[fc2.outputs[0]], scratch_bytes=block * hidden,
                      macs=fc1.macs + fc2.macs,
                      inplace={0: 0} if out_width <= width else {})


def fuse_mlp(program: Program, block: int = DEFAULT_BLOCK) -> Program:
    """The program with every fully_connected -> [table] -> fully_connected chain over the
    same rows as one token-blocked edgec_mlp_s8 call."""
    calls = program.calls
    consumers: dict[str, list[int]] = {}
    for i, c in enumerate(calls):
        for t in dict.fromkeys(c.inputs):
            consumers.setdefault(t, []).append(i)
    replaced: dict[int, KernelCall] = {}
    removed: set[int] = set()
    for i, fc1 in enumerate(calls):
        if fc1.kernel != FC or i in removed:
            continue
        j = _only_reader(program, consumers, fc1.outputs[0])
        table = None
        if j is not None and calls[j].kernel == "edgec_lut_s8":
            table = calls[j]
            j = _only_reader(program, consumers, table.outputs[0])
        if j is None or calls[j].kernel != FC or j in replaced:
            continue
        fc2 = calls[j]
        rows, hidden = int(fc1.fields["rows"]), int(fc1.fields["out_depth"])
        # tokens through a widening layer (a transformer's MLP); a classifier's FC -> FC on
        # one row keeps its optimized kernels
        if int(fc2.fields["rows"]) != rows or int(fc2.fields["in_depth"]) != hidden or \
                rows < 2 or hidden <= int(fc1.fields["in_depth"]):
            continue
        replaced[j] = _fused(fc1, table, fc2, block)
        removed.add(i)
        if table is not None:
            removed.add(calls.index(table))
    if not replaced:
        return program
    return dataclasses.replace(program, calls=[replaced.get(i, c) for i, c in enumerate(calls)
                                               if i not in removed])
