"""Memory-frugal attention: softmax(Q K^T [* scale]) V as one call, head by head and query row
by query row (MCUFormer's operator library), so the [heads, N, N] score matrix never exists.

`fuse_attention(program)` finds, in a lowered program,

    batch_matmul(Q, K) -> [mul by a scalar constant] -> softmax -> batch_matmul(P, V)

(each intermediate read by the next call only) and replaces the chain by one
edgec_attention_s8 call. Per query row it computes the N scores into a scratch row of N int8
values with the first matmul's requantization, applies the scalar mul's and then the softmax's
integer arithmetic to that row, and multiplies the row by V with the second matmul's
requantization: every byte equals the unfused sequence's (the unfused ops are all row-wise).
With int16 probabilities (softmax -> int16, chosen by the precision search) the scratch also
holds one int16 row of them.

The fused call also absorbs data movement around it: Q, K and V are read through strides
from the tensor that the reshape / transpose / slice chain in front of them starts from
(typically the qkv projection, so neither the transposed copy nor the three slices are
made), and the output is written through strides into the tensor that a transpose / reshape
chain behind it ends in (the [tokens, heads * d] layout the projection reads). Calls whose
outputs nobody reads any more are then dropped.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from .. import golden
from .program import KernelCall, Program

KERNEL = "edgec_attention_s8"
PARAMS = "edgec_attention_params"
MOVERS = ("edgec_transpose_s8", "edgec_strided_slice_s8")  # pure index maps


def _size(program: Program, name: str) -> int:
    return int(np.prod(program.graph.tensors[name].shape, dtype=np.int64))


def _moves(call: KernelCall) -> bool:
    return call.view or call.kernel in MOVERS


def _index_map(program: Program, producers: dict[str, int], name: str
               ) -> tuple[str, np.ndarray]:
    """(base tensor, flat int64 array: element i of `name` is element map[i] of the base),
    following reshapes, transposes and slices back to a tensor something else produced."""
    i = producers.get(name)
    if i is None or not _moves(program.calls[i]):
        return name, np.arange(_size(program, name), dtype=np.int64)
    call = program.calls[i]
    base, idx = _index_map(program, producers, call.inputs[0])
    return base, _move(call, idx)


def _move(call: KernelCall, idx: np.ndarray) -> np.ndarray:
    """A data-movement call applied to an index array instead of int8 values."""
    if call.view:
        return idx
    return np.asarray(golden.KERNELS[call.kernel](call.fields, idx), np.int64)


def _affine(idx: np.ndarray, shape: tuple[int, ...]) -> Optional[tuple[int, list[int]]]:
    """(start, per-axis element strides) if idx (flat over `shape`) is start + sum i_k a_k."""
    shape = tuple(int(d) for d in shape)
    grid = idx.reshape(shape)
    start = int(grid.reshape(-1)[0])
    strides = []
    for axis, d in enumerate(shape):
        if d == 1:
            strides.append(0)
            continue
        one = [0] * len(shape)
        one[axis] = 1
        strides.append(int(grid[tuple(one)]) - start)
    want = start + sum(np.arange(d).reshape([-1 if k == a else 1 for k in range(len(shape))])
                       * s for a, (d, s) in enumerate(zip(shape, strides)))
    return (start, strides) if np.array_equal(grid, want) else None


def _contiguous_strides(shape) -> list[int]:
    strides, step = [], 1
    for d in reversed([int(d) for d in shape]):
        strides.append(step)
        step *= d
    return strides[::-1]


def _operand(program: Program, producers: dict[str, int], name: str, values: dict[str, int]
             ) -> tuple[str, int, dict[str, int]]:
    """Where the fused kernel reads operand `name`: (tensor, start, the matmul's stride field
    values mapped to that tensor's element strides). The tensor is the start of the
    data-movement chain producing `name` when that chain is an affine index map, else
    `name` itself (strides unchanged)."""
    shape = program.graph.tensors[name].shape
    base, idx = _index_map(program, producers, name)
    fit = _affine(idx, shape) if base != name else None
    if fit is None:
        return name, 0, dict(values)
    start, strides = fit
    # a field value is the contiguous stride of one axis of `name`; an axis of size 1 may
    # share its value with a longer one, and then the longer one's stride is the one used
    remap = {0: 0}
    for order in (True, False):
        for d, c, a in zip(shape, _contiguous_strides(shape), strides):
            if (int(d) == 1) == order:
                remap[c] = a
    if any(v not in remap for v in values.values()):
        return name, 0, dict(values)
    return base, start, {k: remap[v] for k, v in values.items()}


def _batch(values: tuple, key: str) -> dict[str, int]:
    return {f"{key}{k}": int(v) for k, v in enumerate(values)}


def _unbatch(d: dict[str, int], key: str) -> tuple[int, int, int]:
    return tuple(d[f"{key}{k}"] for k in range(3))  # type: ignore[return-value]


def _output(program: Program, consumers: dict[str, list[int]], name: str, batch: tuple
            ) -> tuple[str, list[int], dict[str, int]]:
    """Where the fused kernel writes the product [batch..., rows, cols] `name`: (tensor, the
    calls of the transpose / reshape chain it replaces, {out_start, out_batch_stride0..2,
    out_row_stride, out_col_stride})."""
    graph = program.graph
    shape = tuple(int(d) for d in graph.tensors[name].shape)
    cur, chain = name, []
    idx = np.arange(_size(program, name), dtype=np.int64)
    while cur not in graph.outputs and len(consumers.get(cur, [])) == 1:
        call = program.calls[consumers[cur][0]]
        if not (call.view or call.kernel == "edgec_transpose_s8"):
            break
        idx = _move(call, idx)
        chain.append(consumers[cur][0])
        cur = call.outputs[0]
    pos = np.empty_like(idx)
    pos[idx] = np.arange(idx.size, dtype=np.int64)  # element i of `name` -> place in `cur`
    fit = _affine(pos, shape)
    if fit is None:
        cur, chain = name, []
        fit = _affine(np.arange(idx.size, dtype=np.int64), shape)
    start, strides = fit  # type: ignore[misc]
    kept = [strides[k] for k, d in enumerate(shape[:-2]) if d != 1]
    out_batch = (0,) * (3 - len(kept)) + tuple(kept)
    if tuple(d for d in shape[:-2] if d != 1) != tuple(b for b in batch if b != 1):
        raise AssertionError("batch dims of the product and of the call disagree")
    return cur, chain, {"out_start": start, **_batch(out_batch, "out_batch_stride"),
                        "out_row_stride": strides[-2], "out_col_stride": strides[-1]}


# softmax kernel -> the probabilities x V kernel it feeds
_SOFTMAX_MATMUL = {"edgec_softmax_s8": "edgec_batch_matmul_s8",
                   "edgec_softmax_s8_s16": "edgec_batch_matmul_s16_s8"}


def _only_reader(program: Program, consumers, name: str) -> Optional[int]:
    readers = consumers.get(name, [])
    if name in program.graph.outputs or len(readers) != 1:
        return None
    return readers[0]


def _match(program: Program, i: int, consumers) -> Optional[tuple[list[int], int]]:
    """([mm1, mul?, softmax], mm2) when call i starts a fusable attention chain."""
    calls = program.calls
    mm1 = calls[i]
    if mm1.kernel != "edgec_batch_matmul_s8":
        return None
    chain = [i]
    j = _only_reader(program, consumers, mm1.outputs[0])
    if j is not None and calls[j].kernel == "edgec_mul_const_s8":
        c = calls[j].fields["constant"]
        if np.asarray(c.data).size != 1 or calls[j].inputs[0] != mm1.outputs[0] or \
                _size(program, calls[j].outputs[0]) != _size(program, mm1.outputs[0]):
            return None
        chain.append(j)
        j = _only_reader(program, consumers, calls[j].outputs[0])
    if j is None or calls[j].kernel not in _SOFTMAX_MATMUL or \
            int(calls[j].fields["depth"]) != int(mm1.fields["cols"]):
        return None
    chain.append(j)
    k = _only_reader(program, consumers, calls[j].outputs[0])
    if k is None:
        return None
    mm2, f1 = calls[k], mm1.fields
    if mm2.kernel != _SOFTMAX_MATMUL[calls[j].kernel] or mm2.inputs[0] != calls[j].outputs[0]:
        return None
    f2 = mm2.fields
    rows, keys = int(f1["rows"]), int(f1["cols"])
    b = tuple(int(x) for x in f1["batch"])
    contiguous = (b[1] * b[2] * rows * keys, b[2] * rows * keys, rows * keys)
    if tuple(f2["batch"]) != b or int(f2["rows"]) != rows or int(f2["depth"]) != keys or \
            int(f2["lhs_row_stride"]) != keys or int(f2["lhs_depth_stride"]) != 1 or \
            any(n > 1 and s != e for n, s, e in zip(b, f2["lhs_batch_stride"], contiguous)):
        return None
    return chain, k


def _fused_call(program: Program, producers, consumers, chain: list[int], k: int
                ) -> tuple[KernelCall, list[int]]:
    calls = program.calls
    mm1, mm2 = calls[chain[0]], calls[k]
    f1, f2 = mm1.fields, mm2.fields
    scale = calls[chain[1]] if len(chain) == 3 else None
    softmax = calls[chain[-1]]
    probs_s16 = softmax.kernel == "edgec_softmax_s8_s16"
    q, q_start, qs = _operand(program, producers, mm1.inputs[0], {
        **_batch(f1["lhs_batch_stride"], "b"), "row": int(f1["lhs_row_stride"]),
        "depth": int(f1["lhs_depth_stride"])})
    kk, k_start, ks = _operand(program, producers, mm1.inputs[1], {
        **_batch(f1["rhs_batch_stride"], "b"), "depth": int(f1["rhs_depth_stride"]),
        "key": int(f1["rhs_col_stride"])})
    v, v_start, vs = _operand(program, producers, mm2.inputs[1], {
        **_batch(f2["rhs_batch_stride"], "b"), "key": int(f2["rhs_depth_stride"]),
        "col": int(f2["rhs_col_stride"])})
    out, out_chain, os_ = _output(program, consumers, mm2.outputs[0], tuple(f1["batch"]))
    sf = scale.fields if scale is not None else None
    fields = {
        "batch": tuple(int(x) for x in f1["batch"]),
        "q_batch_stride": _unbatch(qs, "b"),
        "k_batch_stride": _unbatch(ks, "b"),
        "v_batch_stride": _unbatch(vs, "b"),
        "out_batch_stride": _unbatch(os_, "out_batch_stride"),
        "q_start": q_start, "k_start": k_start, "v_start": v_start,
        "out_start": os_["out_start"],
        "rows": int(f1["rows"]), "keys": int(f1["cols"]), "depth": int(f1["depth"]),
        "value_depth": int(f2["cols"]),
        "q_row_stride": qs["row"], "q_depth_stride": qs["depth"],
        "k_depth_stride": ks["depth"], "k_key_stride": ks["key"],
        "v_key_stride": vs["key"], "v_col_stride": vs["col"],
        "out_row_stride": os_["out_row_stride"], "out_col_stride": os_["out_col_stride"],
        "q_offset": int(f1["lhs_offset"]), "k_offset": int(f1["rhs_offset"]),
        "score_offset": int(f1["output_offset"]),
        "score_multiplier": int(f1["output_multiplier"]),
        "score_shift": int(f1["output_shift"]),
        "score_act_min": int(f1["act_min"]), "score_act_max": int(f1["act_max"]),
        "has_scale": int(scale is not None),
        "scale_input_offset": int(sf["input1_offset"]) if sf else 0,
        # the constant's one value plus its offset: the factor every score is multiplied by
        "scale_factor": (int(np.asarray(sf["constant"].data).reshape(-1)[0])
                         + int(sf["input2_offset"])) if sf else 0,
        "scale_multiplier": int(sf["output_multiplier"]) if sf else 0,
        "scale_shift": int(sf["output_shift"]) if sf else 0,
        "scale_output_offset": int(sf["output_offset"]) if sf else 0,
        "scale_act_min": int(sf["act_min"]) if sf else -128,
        "scale_act_max": int(sf["act_max"]) if sf else 127,
        "softmax_input_multiplier": int(softmax.fields["input_multiplier"]),
        "softmax_input_left_shift": int(softmax.fields["input_left_shift"]),
        "softmax_diff_min": int(softmax.fields["diff_min"]),
        "probs_s16": int(probs_s16),
        "p_offset": int(f2["lhs_offset"]), "v_offset": int(f2["rhs_offset"]),
        "output_offset": int(f2["output_offset"]),
        "output_multiplier": int(f2["output_multiplier"]),
        "output_shift": int(f2["output_shift"]),
        "act_min": int(f2["act_min"]), "act_max": int(f2["act_max"]),
    }
    call = KernelCall(mm2.name, "attention", KERNEL, PARAMS, fields, inputs=[q, kk, v],
                      outputs=[out],
                      # a row of int8 scores (and with int16 probabilities, a row of those)
                      scratch_bytes=int(f1["cols"]) * (3 if probs_s16 else 1),
                      macs=mm1.macs + mm2.macs)
    return call, out_chain


def fuse_attention(program: Program) -> Program:
    """The program with every fusable attention chain as one edgec_attention_s8 call, and
    the data-movement calls that only fed it (or only reshaped its output) removed."""
    calls = program.calls
    consumers: dict[str, list[int]] = {}
    producers: dict[str, int] = {}
    for i, c in enumerate(calls):
        for t in dict.fromkeys(c.inputs):
            consumers.setdefault(t, []).append(i)
        for t in c.outputs:
            producers[t] = i
    replaced: dict[int, KernelCall] = {}
    removed: set[int] = set()
    for i in range(len(calls)):
        m = _match(program, i, consumers)
        if m is None:
            continue
        chain, k = m
        call, out_chain = _fused_call(program, producers, consumers, chain, k)
        replaced[k] = call
        removed.update(chain)
        removed.update(out_chain)
    if not replaced:
        return program
    new_calls = [replaced.get(i, c) for i, c in enumerate(calls) if i not in removed]
    return dataclasses.replace(program, calls=_drop_dead_moves(program, new_calls))


def _drop_dead_moves(program: Program, calls: list[KernelCall]) -> list[KernelCall]:
    """Remove data-movement calls whose outputs no call and no graph output reads."""
    outputs = set(program.graph.outputs)
    while True:
        read = {t for c in calls for t in c.inputs} | outputs
        dead = [c for c in calls if _moves(c) and not any(t in read for t in c.outputs)]
        if not dead:
            return calls
        calls = [c for c in calls if not any(c is d for d in dead)]
