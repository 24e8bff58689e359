"""The IR's op vocabulary: one entry per op, with its inputs and attributes.

This table is the contract between frontends (which produce these ops), passes, the
quantizer and the lowering (which turns each into a runtime_c kernel call). All layouts
are NHWC; see toolchain/ir.py.

Common attributes:
  act_min, act_max   fused activation clamp in real (float) units; None = unbounded.
                     ReLU -> (0, None), ReLU6 -> (0, 6), Clip(a, b) -> (a, b).
  strides            (sh, sw)
  dilations          (dh, dw)
  pads               (top, left, bottom, right), explicit, in input pixels
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OpSpec:
    inputs: tuple[str, ...]  # names in order; a trailing '?' marks an optional input,
    #                          a trailing '*' any number of further inputs (concat)
    attrs: tuple[str, ...]
    doc: str


OPS: dict[str, OpSpec] = {
    "conv2d": OpSpec(("x", "w", "bias?"),
                     ("strides", "dilations", "pads", "act_min", "act_max"),
                     "w [C_OUT,KH,KW,C_IN]; bias [C_OUT]"),
    "depthwise_conv2d": OpSpec(("x", "w", "bias?"),
                               ("strides", "dilations", "pads", "depth_multiplier",
                                "act_min", "act_max"),
                               "w [1,KH,KW,C_IN*depth_multiplier]; bias [C_OUT]"),
    "fully_connected": OpSpec(("x", "w", "bias?"), ("act_min", "act_max", "keep_num_dims"),
                              "x viewed as [-1, C_IN]; w [C_OUT,C_IN]; y [rows, C_OUT], or "
                              "x's leading dims + [C_OUT] with keep_num_dims (same bytes)"),
    "add": OpSpec(("a", "b"), ("act_min", "act_max"),
                  "elementwise, NumPy/TFLite broadcasting (ranks right-aligned, up to 4-D)"),
    "mul": OpSpec(("a", "b"), ("act_min", "act_max"),
                  "elementwise product, NumPy/TFLite broadcasting (as add); add and mul "
                  "take one constant operand (int8, per tensor: TFLite's quantized constant)"),
    "max_pool2d": OpSpec(("x",), ("kernel", "strides", "pads", "act_min", "act_max"),
                         "kernel (kh, kw); padding never wins the max"),
    "avg_pool2d": OpSpec(("x",), ("kernel", "strides", "pads", "act_min", "act_max"),
                         "kernel (kh, kw); the count excludes padding (TFLite)"),
    "mean": OpSpec(("x",), ("axes", "keepdims"), "mean over axes (1, 2) of NHWC"),
    "softmax": OpSpec(("x",), ("beta",), "over the last axis"),
    "reshape": OpSpec(("x",), ("shape",), "a view: same bytes, new shape"),
    "relu": OpSpec(("x",), (), "standalone ReLU (when it could not be fused)"),
    "clip": OpSpec(("x",), ("act_min", "act_max"), "standalone clamp (ReLU6 and the like)"),
    "logistic": OpSpec(("x",), (), "sigmoid 1 / (1 + exp(-x)); int8 output scale 1/256, zp -128"),
    "tanh": OpSpec(("x",), (), "tanh(x); int8 output scale 1/128, zp 0"),
    "hard_swish": OpSpec(("x",), (), "x * relu6(x + 3) / 6"),
    "leaky_relu": OpSpec(("x",), ("alpha",), "x if x >= 0 else alpha * x"),
    # Transformer ops (toolchain/lower/{batch_matmul,gelu,layer_norm,constant}.py):
    "batch_matmul": OpSpec(("a", "b"), ("adj_x", "adj_y"),
                           "a [..., M, K] (adj_x: stored [..., K, M]) times b [..., K, N] "
                           "(adj_y: stored [..., N, K]) -> [..., M, N]; both activations; "
                           "batch dims broadcast (NumPy), ranks 2..5 (TFLite BATCH_MATMUL)"),
    "gelu": OpSpec(("x",), ("approximate",),
                   "x * Phi(x) (approximate: the tanh form); int8 via a 256-entry table"),
    "layer_norm": OpSpec(("x", "gamma", "beta"), ("epsilon",),
                         "over the last axis: (x - mean) / sqrt(var + epsilon) * gamma + beta; "
                         "gamma, beta [C] float32 constants (folded into the int8 kernel)"),
    "constant": OpSpec(("value",), (),
                       "materializes a constant tensor as an activation (e.g. a class token "
                       "concatenated to activations); value: the constant input"),
    # Data movement (toolchain/lower/data_movement.py); axes index the IR (NHWC) shapes:
    "pad": OpSpec(("x",), ("paddings", "value"),
                  "paddings ((before, after) per axis); value: the padding in real units "
                  "(0.0 = the zero point); output quant = input quant"),
    "transpose": OpSpec(("x",), ("perm",), "output axis k is input axis perm[k]"),
    "concat": OpSpec(("x", "more*"), ("axis",),
                     "one or more inputs joined along axis; inputs whose quant differs from "
                     "the output's are requantized"),
    "resize_nearest": OpSpec(("x",), ("size", "align_corners", "half_pixel_centers"),
                             "NHWC; size (OH, OW); TFLite's nearest-neighbour index rule"),
    "strided_slice": OpSpec(("x",), ("begin", "end", "strides", "begin_mask", "end_mask",
                                     "shrink_axis_mask", "offset"),
                            "TFLite STRIDED_SLICE semantics (masks, negative indices; "
                            "offset: end is relative to begin)"),
    # Quantization boundaries (from a .tflite model's QUANTIZE / DEQUANTIZE ops):
    "quantize": OpSpec(("x",), (),
                       "float32 or int8 in -> int8 out with the output's quant; "
                       "int8 -> int8 requantizes (TFLite QUANTIZE)"),
    "dequantize": OpSpec(("x",), (), "int8 -> float32: real = scale * (q - zero_point)"),
    # Only before passes run (removed or folded by toolchain/passes):
    "batch_norm": OpSpec(("x", "scale", "bias", "mean", "var"), ("epsilon",),
                         "inference BatchNorm over the last (C) axis"),
    "identity": OpSpec(("x",), (), "Identity / Dropout in inference"),
}


def supported_list() -> str:
    return ", ".join(sorted(k for k in OPS if k not in ("batch_norm", "identity", "constant")))
