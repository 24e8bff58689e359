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
    inputs: tuple[str, ...]  # names in order; a trailing '?' marks an optional input
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
    "fully_connected": OpSpec(("x", "w", "bias?"), ("act_min", "act_max"),
                              "x viewed as [-1, C_IN]; w [C_OUT,C_IN]; y [rows, C_OUT]"),
    "add": OpSpec(("a", "b"), ("act_min", "act_max"), "elementwise, same shapes"),
    "max_pool2d": OpSpec(("x",), ("kernel", "strides", "pads", "act_min", "act_max"),
                         "kernel (kh, kw); padding never wins the max"),
    "avg_pool2d": OpSpec(("x",), ("kernel", "strides", "pads", "act_min", "act_max"),
                         "kernel (kh, kw); the count excludes padding (TFLite)"),
    "mean": OpSpec(("x",), ("axes", "keepdims"), "mean over axes (1, 2) of NHWC"),
    "softmax": OpSpec(("x",), ("beta",), "over the last axis"),
    "reshape": OpSpec(("x",), ("shape",), "a view: same bytes, new shape"),
    "relu": OpSpec(("x",), (), "standalone ReLU (when it could not be fused)"),
    "clip": OpSpec(("x",), ("act_min", "act_max"), "standalone clamp (ReLU6 and the like)"),
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
    return ", ".join(sorted(k for k in OPS if k not in ("batch_norm", "identity")))
