"""Kernel selection: each reference KernelCall -> the best runtime_c variant whose
preconditions hold, for a target and an optimization goal.

    select_kernels(program, target, optimize="speed" | "size") -> Program

The lowering (toolchain/lower/*.py) produces reference calls only; this stage rewrites the
conv / depthwise / fully connected ones into the optimized kernels of runtime_c/kernels/opt
(runtime_c/include/edgec_kernels_opt.h), with the parameters those kernels want: re-laid
weights, a per-channel requantization table (toolchain/lower/opt_layout.py), scratch sizes
and the in-place capability. Every other call passes through unchanged. The choice is
recorded in KernelCall.kernel (and so in the generated call, its comment and the report).

    conv2d 1x1, no padding       -> edgec_conv2d_1x1[_fast]_s8       (scratch: 2 int16 rows)
    conv2d, any other            -> edgec_conv2d_im2col[_fast]_s8    (scratch: + an im2col patch)
    depthwise, C_IN == 1         -> the im2col conv (a conv with one input channel)
    depthwise 3x3, dilation 1    -> edgec_depthwise_conv2d_3x3_s8    (scratch: an int16 plane)
    depthwise, any other         -> edgec_depthwise_conv2d_opt_s8
    fully_connected, one row     -> edgec_fully_connected_opt_s8 / _fast_s8 (no scratch)
    fully_connected, >= 2 rows   -> edgec_fully_connected_rows[_fast]_s8 (token matrices:
                                    two tokens per weight pass; scratch: 2 int16 rows)
    token-blocked MLP            -> edgec_mlp_{opt,fast}_s8 (the same, both layers; scratch:
                                    2 int16 rows, the int8 hidden layer of 2 tokens)
    add ("speed" only)           -> edgec_add_lut_s8 (two int32[256] tables: 2 KB of flash)
    mul                          -> edgec_mul_opt_s8 (the output requantization precomputed)
    max / avg pool, mean         -> edgec_{max,avg}_pool2d_opt_s8, edgec_mean_opt_s8 (same
                                    parameters, four channels per window walk)
    fused attention, q / k rows  -> edgec_attention_opt_s8 (same parameters; scratch: + exp
    contiguous, depth % 4 == 0      and scale tables, query pairs: ~1.3 KB)
    layer_norm                   -> edgec_layer_norm_opt_s8 (same parameters)

"speed" takes the _fast variants (int16 weights: twice their flash, ~25 % fewer
instructions, more for fully connected layers, whose int8 weights each need SXTB16
unpacking; benchmarks/kernels_bench.py prints both costs) and the ADD tables while the
weights fit 3/4 of the target's flash, largest layers falling back first; "size" takes
the compact variants (int8 weights, -Os) and keeps the reference ADD. The optimized
kernels use SXTB16/SMLAD, so on a core without the DSP extension (Cortex-M0+/M3) the
reference kernels stay.

The golden model runs an optimized call as the reference math on the recovered reference
parameters (opt_layout.REFERENCE_OF), so the emulator check still compares the firmware
with the reference semantics.
"""
from __future__ import annotations

from dataclasses import fields as dataclass_fields
from dataclasses import replace

import numpy as np

from .opt_layout import (FLAG_CLAMP, FLAG_DW_TRANSPOSED, FLAG_RQ_EXACT, accumulator_bound,
                         add_table, ceil_to, pack_depthwise, pack_fc, pack_gemm, requant_table)
from .program import ConstArray, KernelCall, Program

OPTIMIZE_CHOICES = ("speed", "size")
WIDE_FLASH_FRACTION = 0.75  # int16 weights only while all weights fit this share of flash
MAX_PLANE_BYTES = 32 * 1024  # larger depthwise planes: keep the reference kernel
WIDE_ONLY = {"edgec_add_lut_s8"}  # speed-only kernels whose constants the budget may drop
SAME_PARAMS = {"edgec_max_pool2d_s8": "edgec_max_pool2d_opt_s8",
               "edgec_avg_pool2d_s8": "edgec_avg_pool2d_opt_s8",
               "edgec_mean_s8": "edgec_mean_opt_s8",
               "edgec_layer_norm_s8": "edgec_layer_norm_opt_s8"}


def select_kernels(program: Program, target, optimize: str = "speed") -> Program:
    """A new Program whose calls use the optimized kernels where they apply (module doc)."""
    if optimize not in OPTIMIZE_CHOICES:
        raise ValueError(f"optimize must be one of {OPTIMIZE_CHOICES}, got {optimize!r}")
    if not getattr(target, "dsp", False):
        return Program(graph=program.graph, calls=list(program.calls),
                       slices=dict(program.slices))
    wide_ok = optimize == "speed"
    calls = [select_call(c, wide=wide_ok) for c in program.calls]
    if wide_ok:
        budget = WIDE_FLASH_FRACTION * int(target.flash_bytes)
        # largest int16-weight layers fall back to int8 weights until the weights fit
        order = sorted(range(len(calls)), key=lambda i: -calls[i].const_bytes)
        for i in order:
            if sum(c.const_bytes for c in calls) <= budget:
                break
            if calls[i].kernel.endswith("_fast_s8") or calls[i].kernel in WIDE_ONLY:
                calls[i] = select_call(program.calls[i], wide=False)
    return Program(graph=program.graph, calls=calls, slices=dict(program.slices))


def select_call(call: KernelCall, wide: bool) -> KernelCall:
    """The optimized call for one reference call, or the call itself; `wide`: the int16
    weight (_fast) variants."""
    if call.kernel == "edgec_conv2d_s8":
        return _conv(call, wide)
    if call.kernel == "edgec_depthwise_conv2d_s8":
        return _depthwise(call, wide)
    if call.kernel == "edgec_fully_connected_s8":
        if int(call.fields["rows"]) >= 2:
            return _fc_rows(call, wide)
        return _fully_connected(call, wide)
    if call.kernel == "edgec_mlp_s8":
        return _mlp(call, wide)
    if call.kernel == "edgec_add_s8" and wide:
        return _add(call)
    if call.kernel == "edgec_mul_s8":
        return _mul(call)
    if call.kernel in SAME_PARAMS:
        return replace(call, kernel=SAME_PARAMS[call.kernel])
    if call.kernel == "edgec_attention_s8":
        return _attention(call)
    return call


def attention_opt_scratch(f: dict) -> int:
    """edgec_attention_opt_s8_scratch_size: exp and scale tables, query pairs, the rows of
    probabilities (int16) and scores."""
    def pad4(n: int) -> int:
        return (n + 3) // 4 * 4
    keys = int(f["keys"])
    return (4 * 256 + 2 * int(f["depth"]) + 256
            + (pad4(2 * keys) if int(f["probs_s16"]) else 0) + pad4(keys))


def _attention(call: KernelCall) -> KernelCall:
    f = call.fields
    if int(f["q_depth_stride"]) != 1 or int(f["k_depth_stride"]) != 1 or \
            int(f["depth"]) % 4 != 0:
        return call
    return replace(call, kernel="edgec_attention_opt_s8",
                   scratch_bytes=attention_opt_scratch(f))


# ---------------------------------------------------------------------------------------

def _variant(call: KernelCall, **changes) -> KernelCall:
    """The call with another kernel: its in-place capabilities are the new kernel's only
    (`changes` sets `inplace`; any partial-overlap declaration of the reference is dropped)."""
    if "inplace_overlap" in {f.name for f in dataclass_fields(call)}:
        changes.setdefault("inplace_overlap", {})
    return replace(call, **changes)


def _data(v) -> np.ndarray | None:
    return None if v is None else np.asarray(v.data).reshape(-1)


def _flags(exact: bool, act_min: int, act_max: int) -> int:
    flags = FLAG_RQ_EXACT if exact else 0
    if (int(act_min), int(act_max)) != (-128, 127):
        flags |= FLAG_CLAMP
    return flags


def _rq(f: dict, w2d: np.ndarray, bias: np.ndarray | None) -> tuple[ConstArray, bool]:
    table, exact = requant_table(bias, _data(f["output_multiplier"]), _data(f["output_shift"]),
                                 int(f["output_offset"]), accumulator_bound(w2d, _data(f["bias"])))
    return ConstArray("int32_t", table.reshape(-1)), exact


def conv_scratch_bytes(kernel: str, f: dict, depth_pad: int) -> int:
    """= edgec_conv2d_1x1_s8_scratch_size / edgec_conv2d_im2col_s8_scratch_size: two int16
    rows of depth_pad; im2col adds one int8 patch and the band of KH zero-padded input
    rows an output row reads (conv2d_gemm_s8.c, fill_band)."""
    if "_1x1" in kernel:
        return 4 * depth_pad
    kh, kw = f["kernel"]
    band_w = (f["output"][2] - 1) * f["stride"][1] + (kw - 1) * f["dilation"][1] + 1
    return ceil_to(kh * band_w * f["input"][3], 4) + 5 * depth_pad


def depthwise_transposed(f: dict) -> bool:
    """Plane rows along W when the output is taller than wide: the inner loop then runs
    over the longer side (edgec_kernels_opt.h, EDGEC_OPT_DW_TRANSPOSED)."""
    return int(f["output"][2]) < int(f["output"][1])


def depthwise_plane(f: dict) -> tuple[int, int]:
    """(rows, row stride) of the int16 plane in plane coordinates: every tap of every
    output, the whole input at the padding, and the slack of the paired loads."""
    _, h, w, _ = f["input"]
    _, oh, ow, _ = f["output"]
    _, kh, kw, _ = f["filter"]
    (sh, sw), (dh, dw), (ph, pw) = f["stride"], f["dilation"], f["padding"]
    if depthwise_transposed(f):
        h, w, oh, ow, kh, kw, sh, sw, dh, dw, ph, pw = w, h, ow, oh, kw, kh, sw, sh, dw, dh, pw, ph
    rows = max((oh - 1) * sh + (kh - 1) * dh + 1, ph + h)
    stride = max((ow - 1 + ow % 2) * sw + (kw - 1) * dw + 2, pw + w)
    return int(rows), int(stride)


def depthwise_scratch_bytes(f: dict, plane: tuple[int, int]) -> int:
    """= edgec_depthwise_conv2d_opt_s8_scratch_size: the planes (4 when the depth
    multiplier is 1 and C >= 4: filled 4 channels at a time), then an int32 row."""
    inner = f["output"][1] if depthwise_transposed(f) else f["output"][2]
    count = 4 if int(f["depth_multiplier"]) == 1 and int(f["input"][3]) >= 4 else 1
    return count * ceil_to(2 * plane[0] * plane[1], 4) + 4 * (int(inner) + 1)


def _gemm_call(call: KernelCall, f: dict, w4: np.ndarray, wide: bool) -> KernelCall:
    """A conv2d (weights [C_OUT, KH, KW, C_IN]) as edgec_conv2d_{1x1,im2col}[_fast]_s8."""
    c_out, kh, kw, c_in = w4.shape
    pads = tuple(int(v) for v in f["padding"])
    one = kh == 1 and kw == 1 and pads == (0, 0)
    depth = kh * kw * c_in
    depth_pad = ceil_to(depth, 8)
    w2d = w4.reshape(c_out, depth)
    rq, exact = _rq(f, w2d, _data(f["bias"]))
    kernel = "edgec_conv2d_" + ("1x1" if one else "im2col") + ("_fast" if wide else "") + "_s8"
    fields = {
        "input": f["input"], "output": f["output"], "kernel": (kh, kw),
        "stride": f["stride"], "dilation": f["dilation"], "padding": f["padding"],
        "depth_pad": depth_pad, "input_offset": f["input_offset"],
        "output_offset": f["output_offset"], "act_min": f["act_min"], "act_max": f["act_max"],
        "flags": _flags(exact, f["act_min"], f["act_max"]),
        "weights": ConstArray("int32_t", pack_gemm(w2d, depth_pad, wide)),
        "rq": rq,
    }
    inplace, extra = _gemm_inplace(call, f, one)
    return _variant(call, kernel=kernel, params_type="edgec_conv2d_opt_params", fields=fields,
                    scratch_bytes=conv_scratch_bytes(kernel, fields, depth_pad), inplace=inplace,
                    **extra)


def gemm_output_shift(f: dict, one: bool) -> int | None:
    """How far below its input the output of edgec_conv2d_{1x1,im2col}* may start, in
    bytes (0: on it), from the kernel's order: pixel pairs in output order, each read
    (1x1: its two input pixels; im2col: the bands of their output rows, the KH input rows
    they read, refilled when the output row changes) before its outputs are written. After
    each pair, the bytes written so far must end before the first input byte a later pair
    reads. None: the output can't overlap the input usefully (it is empty)."""
    n, h, w, c_in = (int(v) for v in f["input"])
    on, oh, ow, c_out = (int(v) for v in f["output"])
    (sh, sw), (ph, _) = f["stride"], f["padding"]
    npix = on * oh * ow
    if npix == 0:
        return None

    def first_read(pix: int) -> int | None:
        """First input byte read from pixel `pix`'s turn on (None: nothing more read)."""
        if pix >= npix:
            return None
        b, rest = divmod(pix, oh * ow)
        oy, ox = divmod(rest, ow)
        if one:
            return ((b * h + oy * sh) * w + ox * sw) * c_in
        return (b * h + min(max(oy * sh - ph, 0), h)) * w * c_in

    shift = 0
    for j in range(0, npix, 2):
        written = min(j + 2, npix) * c_out
        if one:
            nxt = first_read(j + 2)
        else:  # the band of pixel B's row is read; later bands start on the next row
            b, rest = divmod(min(j + 1, npix - 1), oh * ow)
            nxt = first_read((b * oh * ow) + (rest // ow + 1) * ow)
        if nxt is not None:
            shift = max(shift, written - nxt)
    return shift


def _gemm_inplace(call: KernelCall, f: dict, one: bool) -> tuple[dict, dict]:
    """(inplace, extra fields) for a GEMM conv call: on its input when the output fits
    there, else below it with a partial overlap (KernelCall.inplace_overlap, when the
    planner has it)."""
    shift = gemm_output_shift(f, one)
    out_bytes = int(np.prod(f["output"]))
    in_bytes = int(np.prod(f["input"]))
    if shift is None:
        return {}, {}
    if shift == 0 and out_bytes <= in_bytes:
        return {0: 0}, {}
    overlap = out_bytes - shift
    if overlap <= 0 or "inplace_overlap" not in {fl.name for fl in dataclass_fields(call)}:
        return {}, {}
    return {0: 0}, {"inplace_overlap": {0: overlap}}


def _conv(call: KernelCall, wide: bool) -> KernelCall:
    f = call.fields
    c_out, kh, kw, c_in = f["filter"]
    w4 = _data(f["weights"]).reshape(c_out, kh, kw, c_in)
    return _gemm_call(call, f, w4, wide)


def _depthwise(call: KernelCall, wide: bool) -> KernelCall:
    f = call.fields
    _, kh, kw, c_out = f["filter"]
    c_in = f["input"][3]
    w = _data(f["weights"]).reshape(kh, kw, c_out)
    if c_in == 1:  # one input channel: a conv2d with C_OUT filters [KH, KW, 1]
        w4 = np.transpose(w, (2, 0, 1)).reshape(c_out, kh, kw, 1)
        conv_fields = dict(f, filter=(c_out, kh, kw, 1))
        return _gemm_call(call, conv_fields, w4, wide)
    plane = depthwise_plane(f)
    scratch = depthwise_scratch_bytes(f, plane)
    if scratch > MAX_PLANE_BYTES:
        return call
    transposed = depthwise_transposed(f)
    rq, exact = _rq(f, w.reshape(-1, c_out).T, _data(f["bias"]))
    is3x3 = (kh, kw) == (3, 3) and tuple(f["dilation"]) == (1, 1)
    kernel = "edgec_depthwise_conv2d_3x3_s8" if is3x3 else "edgec_depthwise_conv2d_opt_s8"
    fields = {
        "input": f["input"], "output": f["output"], "kernel": (kh, kw),
        "stride": f["stride"], "dilation": f["dilation"], "padding": f["padding"],
        "plane": plane, "depth_multiplier": f["depth_multiplier"],
        "input_offset": f["input_offset"], "output_offset": f["output_offset"],
        "act_min": f["act_min"], "act_max": f["act_max"],
        "flags": _flags(exact, f["act_min"], f["act_max"]) | (FLAG_DW_TRANSPOSED if transposed
                                                              else 0),
        "weights": ConstArray("int32_t", pack_depthwise(w, transposed)),
        "rq": rq,
    }
    # in place channel by channel (edgec_kernels_opt.h) when the output is no larger
    inplace = {0: 0} if int(f["depth_multiplier"]) == 1 else {}
    return _variant(call, kernel=kernel, params_type="edgec_depthwise_conv2d_opt_params",
                    fields=fields, scratch_bytes=scratch,
                    inplace=inplace)


def _fully_connected(call: KernelCall, wide: bool) -> KernelCall:
    f = call.fields
    c_in, c_out = int(f["in_depth"]), int(f["out_depth"])
    w2d = _data(f["weights"]).reshape(c_out, c_in)
    bias = _data(f["bias"])
    # fold the input offset into the bias: sum w (x + off) = sum w x + off sum w
    folded = (np.zeros(c_out, np.int64) if bias is None else bias.astype(np.int64)) + \
        int(f["input_offset"]) * w2d.astype(np.int64).sum(axis=1)
    partial = np.abs(w2d.astype(np.int64)).sum(axis=1) * 128  # |sum w x| of raw int8 x
    if np.any(np.abs(folded) + partial > (1 << 31) - 1):
        return call
    table, exact = requant_table(folded, _data(f["output_multiplier"]),
                                 _data(f["output_shift"]), int(f["output_offset"]),
                                 accumulator_bound(w2d, bias))
    depth_pad = ceil_to(c_in, 4)
    fields = {
        "rows": f["rows"], "in_depth": c_in, "out_depth": c_out, "depth_pad": depth_pad,
        "input_offset": f["input_offset"], "output_offset": f["output_offset"],
        "act_min": f["act_min"], "act_max": f["act_max"],
        "flags": _flags(exact, f["act_min"], f["act_max"]),
        "weights": ConstArray("int32_t", pack_fc(w2d, depth_pad, wide)),
        "rq": ConstArray("int32_t", table.reshape(-1)),
    }
    kernel = "edgec_fully_connected_" + ("fast" if wide else "opt") + "_s8"
    return _variant(call, kernel=kernel, params_type="edgec_fully_connected_opt_params",
                    fields=fields, inplace={})


def _token_layer(f: dict, prefix: str, c_in: int, c_out: int, wide: bool) -> tuple[dict, int]:
    """The edgec_fully_connected_rows_params fields of one layer (`prefix` + the reference
    field names), and its depth_pad."""
    w2d = _data(f[prefix + "weights"]).reshape(c_out, c_in)
    rq, exact = _rq({k: f[prefix + k] for k in ("bias", "output_multiplier", "output_shift",
                                               "output_offset")}, w2d, _data(f[prefix + "bias"]))
    lo, hi = f[prefix + "act_min"], f[prefix + "act_max"]
    depth_pad = ceil_to(c_in, 8)
    return {"input_offset": f[prefix + "input_offset"],
            "output_offset": f[prefix + "output_offset"], "act_min": lo, "act_max": hi,
            "flags": _flags(exact, lo, hi),
            "weights": ConstArray("int32_t", pack_gemm(w2d, depth_pad, wide)), "rq": rq}, \
        depth_pad


def _fc_rows(call: KernelCall, wide: bool) -> KernelCall:
    """A fully connected layer on two or more tokens: two tokens per weight pass."""
    f = call.fields
    c_in, c_out = int(f["in_depth"]), int(f["out_depth"])
    layer, depth_pad = _token_layer(f, "", c_in, c_out, wide)
    fields = {"rows": f["rows"], "in_depth": c_in, "out_depth": c_out, "depth_pad": depth_pad,
              **layer}
    kernel = "edgec_fully_connected_rows_" + ("fast_" if wide else "") + "s8"
    # a token pair is read into scratch before its rows are written (tokens_opt_s8.c)
    return _variant(call, kernel=kernel, params_type="edgec_fully_connected_rows_params",
                    fields=fields, scratch_bytes=4 * depth_pad,
                    inplace={0: 0} if c_out <= c_in else {})


def mlp_scratch_bytes(in_pad: int, hidden_pad: int) -> int:
    """= edgec_mlp_opt_s8_scratch_size: two int16 rows, then the int8 hidden pair."""
    return 4 * max(in_pad, hidden_pad) + 2 * hidden_pad


def _mlp(call: KernelCall, wide: bool) -> KernelCall:
    """The token-blocked MLP as edgec_mlp_{opt,fast}_s8: two tokens per weight pass."""
    f = call.fields
    c, hidden, c_out = int(f["in_depth"]), int(f["hidden"]), int(f["out_depth"])
    fc1, in_pad = _token_layer(f, "fc1_", c, hidden, wide)
    fc2, hidden_pad = _token_layer(f, "fc2_", hidden, c_out, wide)
    fields = {"rows": f["rows"], "in_depth": c, "hidden": hidden, "out_depth": c_out,
              "in_pad": in_pad, "hidden_pad": hidden_pad,
              **{"fc1_" + k: v for k, v in fc1.items()}, "table": f["table"],
              **{"fc2_" + k: v for k, v in fc2.items()}}
    kernel = "edgec_mlp_" + ("fast" if wide else "opt") + "_s8"
    return _variant(call, kernel=kernel, params_type="edgec_mlp_opt_params", fields=fields,
                    scratch_bytes=mlp_scratch_bytes(in_pad, hidden_pad), inplace=call.inplace)


def _add(call: KernelCall) -> KernelCall:
    """edgec_add_lut_s8: the reference fields, the two scaled-input tables, and the output
    requantization of their sum as one fast rq row when it applies (else exact mode)."""
    f = call.fields
    ls = int(f["left_shift"])
    t1 = add_table(f["input1_offset"], f["input1_multiplier"], f["input1_shift"], ls)
    t2 = add_table(f["input2_offset"], f["input2_multiplier"], f["input2_shift"], ls)
    bound = int(np.abs(t1.astype(np.int64)).max() + np.abs(t2.astype(np.int64)).max())
    fields = {**_output_rq(f, bound), "table1": ConstArray("int32_t", t1),
              "table2": ConstArray("int32_t", t2)}
    return replace(call, kernel="edgec_add_lut_s8", params_type="edgec_add_lut_params",
                   fields=fields)


def _mul(call: KernelCall) -> KernelCall:
    """edgec_mul_opt_s8: the reference fields and the product's fast requantization."""
    f = call.fields
    bound = 255 * 255  # |(a + off1) (b + off2)|
    return replace(call, kernel="edgec_mul_opt_s8", params_type="edgec_mul_opt_params",
                   fields=_output_rq(f, bound))


def _output_rq(f: dict, bound: int) -> dict:
    """The reference fields of an element-wise op, then flags and its output requantization
    (output_multiplier, output_shift, output_offset) as one fast rq row for every
    |value| <= bound, or exact mode."""
    table, exact = requant_table(None, np.array([f["output_multiplier"]]),
                                 np.array([f["output_shift"]]), int(f["output_offset"]),
                                 np.array([bound]))
    _, mult, rnd, shift = (int(v) for v in table[0]) if not exact else (0, 0, 0, 0)
    return {**f, "flags": _flags(exact, f["act_min"], f["act_max"]), "rq_mult": mult,
            "rq_round": rnd, "rq_shift": shift}
