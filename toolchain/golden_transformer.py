"""Golden NumPy kernels of the transformer ops: batch_matmul_s8.c, layer_norm_s8.c,
constant_s8.c and the constant-operand entries of add_s8.c / mul_s8.c.

Registered in toolchain/golden.py's KERNELS. Same contract as there: computed from the
KernelCall fields only, integer arithmetic identical to the C kernels (int64 arrays holding
the C's int32 / int64 values), so golden and firmware agree byte for byte.
"""
from __future__ import annotations

import numpy as np

from . import quant_math as qm
from .lower.layer_norm import FRAC_BITS
from .lower.program import ConstArray, FieldValue

Fields = dict[str, FieldValue]


def _arr(v: FieldValue) -> np.ndarray:
    if not isinstance(v, ConstArray):
        raise TypeError(f"expected a ConstArray, got {type(v).__name__}")
    return np.asarray(v.data).reshape(-1)


# --- BATCH_MATMUL ----------------------------------------------------------------------------

def _operand(x: np.ndarray, batch, batch_stride, outer: int, inner: int, outer_stride: int,
             inner_stride: int) -> np.ndarray:
    """The [b0, b1, b2, outer, inner] matrices an operand's strides address in flat x."""
    b = np.indices(tuple(batch)).reshape(3, -1).T @ np.asarray(batch_stride, np.int64)
    idx = (b[:, None, None] + np.arange(outer)[None, :, None] * outer_stride
           + np.arange(inner)[None, None, :] * inner_stride)
    return x.astype(np.int64)[idx]


def batch_matmul_s8(f: Fields, lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    rows, cols, depth = int(f["rows"]), int(f["cols"]), int(f["depth"])
    a = _operand(lhs, f["batch"], f["lhs_batch_stride"], rows, depth,
                 int(f["lhs_row_stride"]), int(f["lhs_depth_stride"]))
    b = _operand(rhs, f["batch"], f["rhs_batch_stride"], depth, cols,
                 int(f["rhs_depth_stride"]), int(f["rhs_col_stride"]))
    # |partial sums| < 2^31 (the lowering bounds depth): exact in float64
    acc = np.rint((a + int(f["lhs_offset"])).astype(np.float64)
                  @ (b + int(f["rhs_offset"])).astype(np.float64)).astype(np.int64)
    out = qm.wrap_i32(qm.mbqm(acc, int(f["output_multiplier"]), int(f["output_shift"]))
                      + int(f["output_offset"]))
    return np.clip(out, int(f["act_min"]), int(f["act_max"])).astype(np.int8).reshape(-1)


# --- fused attention (toolchain/lower/attention.py) -----------------------------------------

def _requant(acc: np.ndarray, f: Fields, prefix: str, offset: str) -> np.ndarray:
    out = qm.wrap_i32(qm.mbqm(acc, int(f[f"{prefix}multiplier"]), int(f[f"{prefix}shift"]))
                      + int(f[offset]))
    return np.clip(out, int(f[f"{prefix}act_min"]), int(f[f"{prefix}act_max"]))


def attention_s8(f: Fields, q: np.ndarray, k: np.ndarray, v: np.ndarray, softmax_s8,
                 softmax_s8_s16) -> np.ndarray:
    """attention_s8.c: the unfused batch_matmul -> [mul] -> softmax -> batch_matmul
    arithmetic, on operands and an output addressed through the call's strides."""
    batch = f["batch"]
    rows, keys, depth, vdepth = (int(f[n]) for n in ("rows", "keys", "depth", "value_depth"))
    a = _operand(q[int(f["q_start"]):], batch, f["q_batch_stride"], rows, depth,
                 int(f["q_row_stride"]), int(f["q_depth_stride"]))
    b = _operand(k[int(f["k_start"]):], batch, f["k_batch_stride"], depth, keys,
                 int(f["k_depth_stride"]), int(f["k_key_stride"]))
    vv = _operand(v[int(f["v_start"]):], batch, f["v_batch_stride"], keys, vdepth,
                  int(f["v_key_stride"]), int(f["v_col_stride"]))
    acc = np.rint((a + int(f["q_offset"])).astype(np.float64)
                  @ (b + int(f["k_offset"])).astype(np.float64)).astype(np.int64)
    s = _requant(acc, f, "score_", "score_offset")
    if int(f["has_scale"]):
        s = _requant((s + int(f["scale_input_offset"])) * int(f["scale_factor"]), f,
                     "scale_", "scale_output_offset")
    softmax = softmax_s8_s16 if int(f.get("probs_s16", 0)) else softmax_s8
    p = softmax({"rows": s.size // keys, "depth": keys,
                    "input_multiplier": f["softmax_input_multiplier"],
                    "input_left_shift": f["softmax_input_left_shift"],
                    "diff_min": f["softmax_diff_min"]}, s.astype(np.int8).reshape(-1))
    p = p.astype(np.int64).reshape(-1, rows, keys)
    acc = np.rint((p + int(f["p_offset"])).astype(np.float64)
                  @ (vv + int(f["v_offset"])).astype(np.float64)).astype(np.int64)
    o = np.clip(qm.wrap_i32(qm.mbqm(acc, int(f["output_multiplier"]), int(f["output_shift"]))
                            + int(f["output_offset"])), int(f["act_min"]), int(f["act_max"]))
    bi = np.indices(tuple(batch)).reshape(3, -1).T @ np.asarray(f["out_batch_stride"], np.int64)
    pos = (int(f["out_start"]) + bi[:, None, None]
           + np.arange(rows)[None, :, None] * int(f["out_row_stride"])
           + np.arange(vdepth)[None, None, :] * int(f["out_col_stride"]))
    out = np.zeros(o.size, np.int8)
    out[pos.reshape(-1)] = o.reshape(-1)
    return out


# --- LAYER_NORM ------------------------------------------------------------------------------

def _rshift_round(x: np.ndarray, n) -> np.ndarray:
    """x / 2^n rounded half away from zero (n >= 1), on exact integers (Python ints when
    the values may exceed int64's product range)."""
    half = np.left_shift(np.int64(1), np.asarray(n, np.int64) - 1)
    return np.where(x >= 0, (x + half) >> n, -((-x + half) >> n))


def inv_sqrt_s64(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """layer_norm_s8.c inv_sqrt_s64, vectorized: TFLite's GetInvSqrtQuantizedMultiplierExp
    (reverse_shift -1) for int64 inputs. 1 / sqrt(v) ~= m * 2^(shift - 31)."""
    v = np.asarray(values, np.int64).copy()
    small = v <= 1
    v = np.where(small, 1 << 28, v)  # any valid input; replaced below
    out_shift = np.full(v.shape, 11, np.int64)
    while np.any(v >= (1 << 29)):
        big = v >= (1 << 29)
        v = np.where(big, v // 4, v)
        out_shift += big
    pairs = (qm.clz32(v) - 1) // 2 - 1
    out_shift -= pairs
    v = v << (2 * pairs)
    half_input = qm.rounding_divide_by_pot(v >> 1, 1)
    half_three = (1 << 28) + (1 << 27)
    x = np.full(v.shape, 1 << 28, np.int64)
    for _ in range(5):
        x3 = qm.saturating_rounding_mul_by_pot(qm.srdhm(qm.srdhm(x, x), x), 6)
        x = qm.saturating_rounding_mul_by_pot(
            qm.wrap_i32(qm.srdhm(half_three, x) - qm.srdhm(half_input, x3)), 3)
    x = qm.srdhm(x, 1518500250)
    neg = out_shift < 0
    x = np.where(neg, qm.wrap_i32(x << np.where(neg, -out_shift, 0)), x)
    out_shift = np.where(neg, 0, out_shift)
    return (np.where(small, qm.INT32_MAX, x), np.where(small, 0, -out_shift))


def layer_norm_s8(f: Fields, x: np.ndarray) -> np.ndarray:
    depth = int(f["depth"])
    rows = x.size // depth
    xi = x.reshape(rows, depth).astype(np.int64)
    total = xi.sum(axis=1)
    sumsq = (xi * xi).sum(axis=1)
    variance = depth * sumsq - total * total  # < 2^40
    p = int(f["variance_shift"])
    variance = variance << (2 * p) if p >= 0 else _rshift_round(variance, -2 * p)
    mult, shift = inv_sqrt_s64(variance + int(f["epsilon"]))
    norm_shift = 31 - shift - p - FRAC_BITS
    r = depth * xi - total[:, None]
    z = _rshift_round(r * mult[:, None], norm_shift[:, None])  # |r * m| < 2^52
    acc = z * _arr(f["gamma"]).astype(np.int64) + \
        (_arr(f["beta"]).astype(np.int64) << FRAC_BITS)
    q = _rshift_round(acc, FRAC_BITS + int(f["output_shift"])) + int(f["output_offset"])
    return np.clip(q, -128, 127).astype(np.int8).reshape(-1)


# --- constants -------------------------------------------------------------------------------

def constant_s8(f: Fields) -> np.ndarray:
    return _arr(f["data"]).astype(np.int8)


def _with_constant(kernel):
    return lambda f, a: kernel(f, a, _arr(f["constant"]).astype(np.int8))


def kernels(add_s8, mul_s8) -> dict:
    """The entries for golden.KERNELS (add_s8 / mul_s8: golden.py's two-activation ones)."""
    return {
        "edgec_batch_matmul_s8": batch_matmul_s8,
        "edgec_batch_matmul_s16_s8": batch_matmul_s8,  # int16 lhs: the same integer math
        "edgec_layer_norm_s8": layer_norm_s8,
        "edgec_constant_s8": constant_s8,
        "edgec_add_const_s8": _with_constant(add_s8),
        "edgec_mul_const_s8": _with_constant(mul_s8),
    }


def mlp_s8(f: Fields, x: np.ndarray, fully_connected_s8, lut_s8) -> np.ndarray:
    """mlp_s8.c: the unfused fully_connected -> [table] -> fully_connected (rows are
    independent, so all blocks at once give the same bytes)."""
    def fc(prefix, rows, cin, cout):
        return {"rows": rows, "in_depth": cin, "out_depth": cout,
                **{k: f[f"{prefix}{k}"] for k in ("input_offset", "output_offset", "act_min",
                                                  "act_max", "weights", "bias",
                                                  "output_multiplier", "output_shift")}}
    rows, hidden = int(f["rows"]), int(f["hidden"])
    h = fully_connected_s8(fc("fc1_", rows, int(f["in_depth"]), hidden), x)
    if f["table"] is not None:
        h = lut_s8({"size": h.size, "table": f["table"]}, h)
    return fully_connected_s8(fc("fc2_", rows, hidden, int(f["out_depth"])), h)


def fused_kernels(base: dict) -> dict:
    """The fused calls' entries for golden.KERNELS, computed with `base`'s (golden.KERNELS)
    unfused kernels."""
    return {
        "edgec_attention_s8": lambda f, q, k, v: attention_s8(
            f, q, k, v, base["edgec_softmax_s8"], base["edgec_softmax_s8_s16"]),
        "edgec_mlp_s8": lambda f, x: mlp_s8(f, x, base["edgec_fully_connected_s8"],
                                            base["edgec_lut_s8"]),
    }
