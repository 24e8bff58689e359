"""Compile-time data of the optimized kernels (runtime_c/kernels/opt): packed weights, the
per-channel requantization table, and the inverse maps back to the reference parameters.

The packers here define the memory layouts documented in runtime_c/include/edgec_kernels_opt.h;
each has an unpacker, and `REFERENCE_OF` maps every optimized kernel to (reference kernel,
fields -> reference fields), which is how the golden model runs an optimized call: the
reference math on the recovered parameters (toolchain/golden.py).

The requantization table (`requant_table`) is where the fast arithmetic is justified. For a
multiplier m in [2^30, 2^31), a right shift e >= 1, zero point z and accumulator a, with
t = -1 if a < 0 else 0, TFLite's double rounding MBQM is

    srdhm = floor((a m + 2^30) / 2^31)            (its nudge + truncation, both signs)
    out   = floor((srdhm + 2^(e-1) - [srdhm < 0]) / 2^e)      (RoundingDivideByPOT)
          = floor((a m + 2^30 + 2^(30+e) + t 2^31) / 2^(31+e))

(nested floors of integer divisions compose; [srdhm < 0] may be replaced by [a < 0]
because when they differ srdhm = 0 and both sides are 0). Doubling numerator and
denominator and writing 2m = M + 2^32 with M the int32 reading of 2m:

    2^32 (2^(e-1) + z 2^e + a + t) + 2^31 + a M  =  2 (numerator + z 2^(31+e))

so hi(.) >> e of that 64-bit sum is out + z: one SMLAL on (hi, lo) = (round + a + t, 2^31)
with round = 2^(e-1) + z 2^e. LiteRT's fully connected rounds once, half away from zero:
out = floor((a m + 2^(30+e) - [a < 0]) / 2^(31+e)); doubling gives the same hi with lo = t
(the -1 may replace -2 there: the numerator is even, so no multiple of 2^(32+e) lies
between them). Both need the 64-bit sum to stay below 2^63, checked here per channel from
the accumulator bound; otherwise the layer runs in exact mode (the reference primitives).
"""
from __future__ import annotations

import numpy as np

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1

FLAG_RQ_EXACT = 1  # EDGEC_OPT_RQ_EXACT
FLAG_CLAMP = 2  # EDGEC_OPT_CLAMP
FLAG_DW_TRANSPOSED = 4  # EDGEC_OPT_DW_TRANSPOSED


def ceil_to(value: int, multiple: int) -> int:
    return (int(value) + multiple - 1) // multiple * multiple


def _pack16(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """int16 pairs -> int32 words, low halfword first."""
    u = (lo.astype(np.int64) & 0xFFFF) | ((hi.astype(np.int64) & 0xFFFF) << 16)
    return u.astype(np.uint32).view(np.int32)


def _unpack16(words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    u = words.astype(np.int32).view(np.uint32).astype(np.int64)
    return ((u & 0xFFFF).astype(np.uint16).view(np.int16).astype(np.int64),
            (u >> 16).astype(np.uint16).view(np.int16).astype(np.int64))


def _bytes_to_words(b: np.ndarray) -> np.ndarray:
    """int8 [..., 4] -> int32 words, byte k in bits 8k..8k+7 (what LDR reads little-endian)."""
    return np.ascontiguousarray(b.astype(np.int8)).view("<i4").astype(np.int32).reshape(
        b.shape[:-1])


def _words_to_bytes(words: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(words.astype("<i4")).view(np.int8).reshape(words.shape + (4,))


# ---------------------------------------------------------------------------------------
# Requantization table
# ---------------------------------------------------------------------------------------

def accumulator_bound(w_per_channel: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """Per channel, the largest |int32 accumulator| any input can give (the lowering's
    check_accumulator bound): sum |w| * 255 + |bias|."""
    bound = np.abs(w_per_channel.astype(np.int64)).sum(axis=1) * 255
    if bias is not None:
        bound = bound + np.abs(bias.astype(np.int64))
    return bound


def requant_table(bias: np.ndarray | None, mult: np.ndarray, shift: np.ndarray,
                  output_offset: int, acc_bound: np.ndarray) -> tuple[np.ndarray, bool]:
    """The rq table [C, 4] (see runtime_c/include/edgec_kernels_opt.h) and whether the layer
    must run in exact mode. The fast form holds for both roundings (module doc)."""
    c = int(np.asarray(mult).size)
    b = np.zeros(c, np.int64) if bias is None else np.asarray(bias, np.int64).reshape(-1)
    mult = np.asarray(mult, np.int64).reshape(-1)
    shift = np.asarray(shift, np.int64).reshape(-1)
    z = int(output_offset)
    fast = []
    for ch in range(c):
        m, s, bound = int(mult[ch]), int(shift[ch]), int(acc_bound[ch])
        if m == 0:  # a flushed (tiny) scale: out = z for every a; find an equivalent
            m, s = _zero_multiplier(bound, z)
            if m == 0:
                return _exact_table(b, mult, shift), True
        e = -s
        if not (1 << 30) <= m < (1 << 31) or not 1 <= e <= 31:
            return _exact_table(b, mult, shift), True
        rnd = (1 << (e - 1)) + z * (1 << e)
        worst = bound * 2 * m + (1 << 31) + (1 << (31 + e)) + (1 << 32) + 128 * (1 << (32 + e))
        if not INT32_MIN <= rnd <= INT32_MAX or worst >= (1 << 63):
            return _exact_table(b, mult, shift), True
        fast.append((int(b[ch]), 2 * m - (1 << 32), rnd, e))
    return np.asarray(fast, np.int64).astype(np.int32).reshape(c, 4), False


def _zero_multiplier(bound: int, z: int) -> tuple[int, int]:
    """A (2^30, -e) that requantizes every |a| <= bound to 0 (+ z) as the multiplier 0
    does, in both roundings; (0, 0) if none with a round term inside int32. The formula is
    non-decreasing in a, so the two ends of the range decide."""
    for e in range(max(1, int(bound).bit_length() + 1), 23):
        row = (0, (1 << 31) - (1 << 32), (1 << (e - 1)) + z * (1 << e), e)
        if all(rq_fast(a, row, fc) == z for a in (-bound, bound) for fc in (False, True)):
            return 1 << 30, -e
    return 0, 0


def _exact_table(bias: np.ndarray, mult: np.ndarray, shift: np.ndarray) -> np.ndarray:
    return np.stack([bias, mult, np.zeros_like(bias), shift], axis=1).astype(np.int32)


def requant_reference(table: np.ndarray, exact: bool, output_offset: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(bias, multiplier, shift) that the reference kernels compute the same bytes from."""
    t = np.asarray(table, np.int64).reshape(-1, 4)
    if exact:
        return t[:, 0], t[:, 1], t[:, 3]
    e = t[:, 3]
    m = (t[:, 1] + (1 << 32)) // 2
    expect = (np.left_shift(1, e - 1) + int(output_offset) * np.left_shift(1, e))
    if np.any(t[:, 2] != expect):
        raise ValueError("rq table: round term does not match the output offset")
    return t[:, 0], m, -e


def rq_fast(a: int, row, fc: bool) -> int:
    """The C fast-mode formula (edgec_opt_rq_conv / _fc) in Python integers, for tests:
    (hi:lo) = (round + a + t : L) + a * mult modulo 2^64, then (int32)hi >> e."""
    bias, mult, rnd, e = (int(v) for v in row)
    a = int(a)
    t = -1 if a < 0 else 0
    hi = (rnd + a + t) & 0xFFFFFFFF
    lo = (t & 0xFFFFFFFF) if fc else 0x80000000
    v = ((hi << 32) | lo) + a * mult
    v &= (1 << 64) - 1
    h = (v >> 32) & 0xFFFFFFFF
    h = h - (1 << 32) if h >= (1 << 31) else h
    return h >> e


# ---------------------------------------------------------------------------------------
# Weight layouts
# ---------------------------------------------------------------------------------------

def pack_gemm(w2d: np.ndarray, depth_pad: int, wide: bool) -> np.ndarray:
    """[C_OUT, depth] int8 -> edgec_conv2d_opt_params.weights (pairs of channels, blocks of 4)."""
    c_out, depth = w2d.shape
    c2 = ceil_to(c_out, 2)
    w = np.zeros((c2, depth_pad), np.int64)
    w[:c_out, :depth] = w2d
    w = w.reshape(c2 // 2, 2, depth_pad // 4, 4)  # [pair, ch, block, k]
    if wide:
        words = np.stack([_pack16(w[..., 0], w[..., 2]), _pack16(w[..., 1], w[..., 3])], -1)
        return words.transpose(0, 2, 1, 3).reshape(-1)  # [pair, block, ch, 2]
    return _bytes_to_words(w.transpose(0, 2, 1, 3)).reshape(-1)  # [pair, block, ch]


def unpack_gemm(words: np.ndarray, c_out: int, depth: int, depth_pad: int,
                wide: bool) -> np.ndarray:
    c2 = ceil_to(c_out, 2)
    if wide:
        lo, hi = _unpack16(np.asarray(words).reshape(c2 // 2, depth_pad // 4, 2, 2))
        w = np.stack([lo[..., 0], lo[..., 1], hi[..., 0], hi[..., 1]], -1)  # k0 k1 k2 k3
    else:
        w = _words_to_bytes(np.asarray(words).reshape(c2 // 2, depth_pad // 4, 2))
    w = w.transpose(0, 2, 1, 3).reshape(c2, depth_pad)
    return w[:c_out, :depth].astype(np.int8)


def pack_fc(w2d: np.ndarray, depth_pad: int, wide: bool) -> np.ndarray:
    """[C_OUT, C_IN] int8 -> edgec_fully_connected_opt_params.weights (groups of 4)."""
    c_out, depth = w2d.shape
    c4 = ceil_to(c_out, 4)
    w = np.zeros((c4, depth_pad), np.int64)
    w[:c_out, :depth] = w2d
    w = w.reshape(c4 // 4, 4, depth_pad // 4, 4)  # [group, ch, block, k]
    if wide:
        words = np.stack([_pack16(w[..., 0], w[..., 2]), _pack16(w[..., 1], w[..., 3])], -1)
        return words.transpose(0, 2, 1, 3).reshape(-1)  # [group, block, ch, 2]
    return _bytes_to_words(w.transpose(0, 2, 1, 3)).reshape(-1)  # [group, block, ch]


def unpack_fc(words: np.ndarray, c_out: int, depth: int, depth_pad: int,
              wide: bool) -> np.ndarray:
    c4 = ceil_to(c_out, 4)
    if wide:
        lo, hi = _unpack16(np.asarray(words).reshape(c4 // 4, depth_pad // 4, 4, 2))
        w = np.stack([lo[..., 0], lo[..., 1], hi[..., 0], hi[..., 1]], -1)
    else:
        w = _words_to_bytes(np.asarray(words).reshape(c4 // 4, depth_pad // 4, 4))
    w = w.transpose(0, 2, 1, 3).reshape(c4, depth_pad)
    return w[:c_out, :depth].astype(np.int8)


def pack_depthwise(w: np.ndarray, transposed: bool = False) -> np.ndarray:
    """[KH, KW, C_OUT] int8 -> per channel, per filter row, taps two by two (an odd row
    padded with 0); rows along H, or along W when `transposed` (plane coordinates)."""
    if transposed:
        w = np.transpose(w, (1, 0, 2))
    kh, kw, c = w.shape
    kw2 = ceil_to(kw, 2)
    p = np.zeros((c, kh, kw2), np.int64)
    p[:, :, :kw] = np.transpose(w, (2, 0, 1))
    return _pack16(p[..., 0::2], p[..., 1::2]).reshape(-1)


def unpack_depthwise(words: np.ndarray, kh: int, kw: int, c: int,
                     transposed: bool = False) -> np.ndarray:
    if transposed:
        kh, kw = kw, kh
    kw2 = ceil_to(kw, 2)
    lo, hi = _unpack16(np.asarray(words).reshape(c, kh, kw2 // 2))
    p = np.transpose(np.stack([lo, hi], -1).reshape(c, kh, kw2)[:, :, :kw], (1, 2, 0))
    return (np.transpose(p, (1, 0, 2)) if transposed else p).astype(np.int8)


# ---------------------------------------------------------------------------------------
# Back to the reference parameters (the golden model of an optimized call)
# ---------------------------------------------------------------------------------------

def _arr(v) -> np.ndarray:
    return np.asarray(v.data).reshape(-1)


def _const(ctype: str, data: np.ndarray):
    from .program import ConstArray
    dtype = {"int8_t": np.int8, "int32_t": np.int32}[ctype]
    return ConstArray(ctype, np.asarray(data).astype(dtype).reshape(-1))


def _requant_fields(f: dict) -> dict:
    exact = bool(int(f["flags"]) & FLAG_RQ_EXACT)
    b, m, s = requant_reference(_arr(f["rq"]), exact, int(f["output_offset"]))
    return {"output_multiplier": _const("int32_t", m), "output_shift": _const("int32_t", s),
            "bias": _const("int32_t", b)}


def conv_reference_fields(f: dict, wide: bool) -> dict:
    """edgec_conv2d_opt_params -> edgec_conv2d_params."""
    n, h, w, c_in = f["input"]
    c_out = f["output"][3]
    kh, kw = f["kernel"]
    weights = unpack_gemm(_arr(f["weights"]), c_out, kh * kw * c_in, int(f["depth_pad"]), wide)
    rq = _requant_fields(f)
    return {"input": f["input"], "filter": (c_out, kh, kw, c_in), "output": f["output"],
            "stride": f["stride"], "dilation": f["dilation"], "padding": f["padding"],
            "input_offset": f["input_offset"], "output_offset": f["output_offset"],
            "act_min": f["act_min"], "act_max": f["act_max"],
            "weights": _const("int8_t", weights), "bias": rq["bias"],
            "output_multiplier": rq["output_multiplier"], "output_shift": rq["output_shift"]}


def depthwise_reference_fields(f: dict) -> dict:
    """edgec_depthwise_conv2d_opt_params -> edgec_depthwise_conv2d_params."""
    c_out = f["output"][3]
    kh, kw = f["kernel"]
    weights = unpack_depthwise(_arr(f["weights"]), kh, kw, c_out,
                               bool(int(f["flags"]) & FLAG_DW_TRANSPOSED))
    rq = _requant_fields(f)
    return {"input": f["input"], "filter": (1, kh, kw, c_out), "output": f["output"],
            "stride": f["stride"], "dilation": f["dilation"], "padding": f["padding"],
            "depth_multiplier": f["depth_multiplier"], "input_offset": f["input_offset"],
            "output_offset": f["output_offset"], "act_min": f["act_min"],
            "act_max": f["act_max"], "weights": _const("int8_t", weights), "bias": rq["bias"],
            "output_multiplier": rq["output_multiplier"], "output_shift": rq["output_shift"]}


def fc_reference_fields(f: dict, wide: bool) -> dict:
    """edgec_fully_connected_opt_params -> edgec_fully_connected_params (the folded input
    offset taken back out of the bias)."""
    c_in, c_out = int(f["in_depth"]), int(f["out_depth"])
    weights = unpack_fc(_arr(f["weights"]), c_out, c_in, int(f["depth_pad"]), wide)
    rq = _requant_fields(f)
    bias = _arr(rq["bias"]).astype(np.int64) - int(f["input_offset"]) * \
        weights.astype(np.int64).sum(axis=1)
    return {"rows": f["rows"], "in_depth": c_in, "out_depth": c_out,
            "input_offset": f["input_offset"], "output_offset": f["output_offset"],
            "act_min": f["act_min"], "act_max": f["act_max"],
            "weights": _const("int8_t", weights), "bias": _const("int32_t", bias),
            "output_multiplier": rq["output_multiplier"], "output_shift": rq["output_shift"]}



def fc_rows_reference_fields(f: dict, wide: bool) -> dict:
    """edgec_fully_connected_rows_params -> edgec_fully_connected_params."""
    c_in, c_out = int(f["in_depth"]), int(f["out_depth"])
    weights = unpack_gemm(_arr(f["weights"]), c_out, c_in, int(f["depth_pad"]), wide)
    rq = _requant_fields(f)
    return {"rows": f["rows"], "in_depth": c_in, "out_depth": c_out,
            "input_offset": f["input_offset"], "output_offset": f["output_offset"],
            "act_min": f["act_min"], "act_max": f["act_max"],
            "weights": _const("int8_t", weights), **rq}


MLP_LAYER_FIELDS = ("input_offset", "output_offset", "act_min", "act_max", "flags", "weights",
                    "rq")


def mlp_reference_fields(f: dict, wide: bool) -> dict:
    """edgec_mlp_opt_params -> edgec_mlp_params (any block gives the same bytes: 2, the
    optimized kernel's token pair)."""
    out = {"rows": f["rows"], "in_depth": f["in_depth"], "hidden": f["hidden"],
           "out_depth": f["out_depth"], "block": 2}
    for prefix, pad, depth in (("fc1_", "in_pad", "in_depth"), ("fc2_", "hidden_pad", "hidden")):
        layer = {k: f[prefix + k] for k in MLP_LAYER_FIELDS}
        c_out = int(f["hidden"]) if prefix == "fc1_" else int(f["out_depth"])
        ref = fc_rows_reference_fields({**layer, "rows": f["rows"], "in_depth": f[depth],
                                        "out_depth": c_out, "depth_pad": f[pad]}, wide)
        out.update({prefix + k: ref[k] for k in ("input_offset", "output_offset", "act_min",
                                                 "act_max", "weights", "bias",
                                                 "output_multiplier", "output_shift")})
        if prefix == "fc1_":
            out["table"] = f["table"]
    return out


# optimized kernel -> (reference kernel, its fields -> the reference kernel's fields)
# ---------------------------------------------------------------------------------------
# ADD tables, pooling
# ---------------------------------------------------------------------------------------

ADD_EXTRA_FIELDS = ("flags", "rq_mult", "rq_round", "rq_shift", "table1", "table2")


def add_table(offset: int, multiplier: int, shift: int, left_shift: int) -> np.ndarray:
    """edgec_add_lut_params.table1/2: for each input byte read as uint8 u, TFLite's scaled
    input MBQM(((int8)u + offset) << left_shift, multiplier, shift), int32 [256]."""
    from ..quant_math import mbqm
    raw = np.arange(256, dtype=np.int64).astype(np.uint8).view(np.int8).astype(np.int64)
    return np.asarray(mbqm((raw + int(offset)) << int(left_shift), int(multiplier), int(shift)),
                      np.int64).astype(np.int32)


def add_reference_fields(f: dict) -> dict:
    """edgec_add_lut_params / edgec_mul_opt_params -> the reference params: their leading
    fields are the reference's."""
    return {k: v for k, v in f.items() if k not in ADD_EXTRA_FIELDS}


REFERENCE_OF = {
    "edgec_conv2d_1x1_s8": ("edgec_conv2d_s8", lambda f: conv_reference_fields(f, False)),
    "edgec_conv2d_1x1_fast_s8": ("edgec_conv2d_s8", lambda f: conv_reference_fields(f, True)),
    "edgec_conv2d_im2col_s8": ("edgec_conv2d_s8", lambda f: conv_reference_fields(f, False)),
    "edgec_conv2d_im2col_fast_s8": ("edgec_conv2d_s8",
                                    lambda f: conv_reference_fields(f, True)),
    "edgec_depthwise_conv2d_opt_s8": ("edgec_depthwise_conv2d_s8", depthwise_reference_fields),
    "edgec_depthwise_conv2d_3x3_s8": ("edgec_depthwise_conv2d_s8", depthwise_reference_fields),
    "edgec_fully_connected_opt_s8": ("edgec_fully_connected_s8",
                                     lambda f: fc_reference_fields(f, False)),
    "edgec_fully_connected_fast_s8": ("edgec_fully_connected_s8",
                                      lambda f: fc_reference_fields(f, True)),
    "edgec_fully_connected_rows_s8": ("edgec_fully_connected_s8",
                                      lambda f: fc_rows_reference_fields(f, False)),
    "edgec_fully_connected_rows_fast_s8": ("edgec_fully_connected_s8",
                                           lambda f: fc_rows_reference_fields(f, True)),
    "edgec_mlp_opt_s8": ("edgec_mlp_s8", lambda f: mlp_reference_fields(f, False)),
    "edgec_mlp_fast_s8": ("edgec_mlp_s8", lambda f: mlp_reference_fields(f, True)),
    "edgec_add_lut_s8": ("edgec_add_s8", add_reference_fields),
    "edgec_mul_opt_s8": ("edgec_mul_s8", add_reference_fields),
    # same parameters as the reference pooling / mean kernels
    "edgec_max_pool2d_opt_s8": ("edgec_max_pool2d_s8", dict),
    "edgec_avg_pool2d_opt_s8": ("edgec_avg_pool2d_s8", dict),
    "edgec_mean_opt_s8": ("edgec_mean_s8", dict),
    "edgec_attention_opt_s8": ("edgec_attention_s8", dict),
    "edgec_layer_norm_opt_s8": ("edgec_layer_norm_s8", dict),
}
