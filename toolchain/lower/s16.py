"""TFLite's 16x8 mode: int16 activations (symmetric, zero point 0), int8 weights.

quantize / dequantize across int8, int16 and float32 -> quantize_s16.c; fully_connected
-> edgec_fully_connected_s16 and conv2d -> edgec_conv2d_s16 (int64 bias and accumulator);
batch_matmul -> edgec_batch_matmul_s16 (int64 accumulator); softmax -> edgec_softmax_s16;
add -> edgec_add_s16 (add.cc's general int16 path); mul -> edgec_mul_s16. Constants are
computed as TFLite's Prepare functions do for these types (quantize.cc, fully_connected.cc,
conv.cc, add.cc, mul.cc); `handles` tells lower_node to route a node here instead of to the
int8 lowering.
"""
from __future__ import annotations

import math

import numpy as np

from ..ir import Graph, Node, Tensor
from ..quant_math import (
    activation_range,
    f32,
    quantize_multiplier,
    quantize_multiplier_smaller_than_one,
)
from .batch_matmul import layout_fields
from .common import (
    ActQuant,
    check_spatial,
    dims4,
    input_name,
    node_error,
    pads4,
    pair,
    per_channel_multipliers,
    weights,
)
from .elementwise import _inplace_binary, broadcast_fields
from .program import ConstArray, KernelCall

ADD_LEFT_SHIFT_S16 = 15  # add.cc, general int16 path: 65535 << 15 < 2^31
_RANGE = {"int8": (-128, 127), "int16": (-32768, 32767)}
# A left shift of MultiplyByQuantizedMultiplier(int32) must keep |x| << shift inside int32.
_MAX_LEFT_SHIFT = {"int8": 22, "int16": 15}
_ACC_LIMIT = 1 << 47  # MultiplyByQuantizedMultiplier(int64) takes |x| < 2^47


def handles(graph: Graph, node: Node) -> bool:
    """True for a node of a 16x8 model: an int16 activation in or out. Not the attention
    probabilities of an int8 model (quantize/precision.py): a softmax of int8 scores with
    int16 output and the batch_matmul of them with int8 V keep their int8 lowerings."""
    names = [t for t in node.inputs + node.outputs if t]
    acts = [graph.tensors[t] for t in node.inputs if t and not graph.tensors[t].is_const]
    if node.op in ("softmax", "batch_matmul") and any(t.dtype == "int8" for t in acts):
        return False
    return node.op in LOWERINGS and any(
        graph.tensors[t].dtype == "int16" and not graph.tensors[t].is_const for t in names)


def quant_of(graph: Graph, node: Node, name: str, dtypes=("int8", "int16")
             ) -> tuple[Tensor, ActQuant]:
    """A per-tensor quantized activation of one of `dtypes`; int16 ones symmetric."""
    t = graph.tensors[name]
    if t.is_const or t.dtype not in dtypes:
        raise node_error(node, f"tensor '{name}' is {'a constant ' if t.is_const else ''}"
                               f"{t.dtype}; expected an activation of {' or '.join(dtypes)}")
    q = t.quant
    if q is None or q.is_per_channel or np.asarray(q.scale).size != 1:
        raise node_error(node, f"activation '{name}' needs per-tensor quantization params")
    scale = f32(float(np.asarray(q.scale).reshape(())))
    zp = int(np.asarray(q.zero_point).reshape(()))
    if not scale > 0.0:
        raise node_error(node, f"activation '{name}' has scale {scale}; it must be > 0")
    lo, hi = _RANGE[t.dtype]
    if t.dtype == "int16" and zp != 0:
        raise node_error(node, f"int16 activation '{name}' has zero point {zp}; 16x8 "
                               f"quantization is symmetric (zero point 0)")
    if not lo <= zp <= hi:
        raise node_error(node, f"activation '{name}' zero point {zp} is outside {t.dtype}")
    return t, ActQuant(scale, zp)


def _size(t: Tensor) -> int:
    return int(np.prod(t.shape, dtype=np.int64))


def _same_size(node: Node, x: Tensor, y: Tensor) -> None:
    if _size(x) != _size(y):
        raise node_error(node, f"input shape {list(x.shape)} and output shape "
                               f"{list(y.shape)} differ")


def _float(graph: Graph, node: Node, name: str) -> Tensor:
    t = graph.tensors[name]
    if t.is_const or t.dtype != "float32":
        raise node_error(node, f"tensor '{name}' must be a float32 activation, got {t.dtype}")
    return t


_SUFFIX = {"int8": "s8", "int16": "s16"}


def lower_quantize(graph: Graph, node: Node) -> KernelCall:
    """QUANTIZE float32 -> int16 (AffineQuantize) or int8/int16 -> int8/int16
    (reference_ops::Requantize, the ratio of the float32 scales in double)."""
    src = graph.tensors[input_name(node, 0)]
    if src.dtype == "float32":
        x = _float(graph, node, src.name)
        y, yq = quant_of(graph, node, node.outputs[0], ("int16",))
        _same_size(node, x, y)
        fields = {"size": _size(y), "scale": yq.scale, "zero_point": yq.zero_point}
        return KernelCall(node.name, node.op, "edgec_quantize_f32_s16",
                          "edgec_quantize_f32_params", fields, inputs=[x.name],
                          outputs=[y.name])
    x, xq = quant_of(graph, node, src.name)
    y, yq = quant_of(graph, node, node.outputs[0])
    _same_size(node, x, y)
    if x.dtype == y.dtype == "int8":
        raise node_error(node, "int8 -> int8 is the int8 lowering's")
    mult, shift = quantize_multiplier(xq.scale / yq.scale)
    if shift > _MAX_LEFT_SHIFT[x.dtype]:
        raise node_error(node, f"scale ratio {xq.scale / yq.scale:g} is too large for a "
                               f"{x.dtype} input (shift {shift} > {_MAX_LEFT_SHIFT[x.dtype]})")
    lo, hi = _RANGE[y.dtype]
    fields = {"size": _size(y), "input_offset": -xq.zero_point,
              "output_offset": yq.zero_point, "multiplier": mult, "shift": shift,
              "act_min": lo, "act_max": hi}
    kernel = f"edgec_requantize_{_SUFFIX[x.dtype]}_{_SUFFIX[y.dtype]}"
    return KernelCall(node.name, node.op, kernel, "edgec_requantize_params", fields,
                      inputs=[x.name], outputs=[y.name])


def lower_dequantize(graph: Graph, node: Node) -> KernelCall:
    x, xq = quant_of(graph, node, input_name(node, 0), ("int16",))
    y = _float(graph, node, node.outputs[0])
    _same_size(node, x, y)
    fields = {"size": _size(y), "scale": xq.scale, "zero_point": xq.zero_point}
    return KernelCall(node.name, node.op, "edgec_dequantize_s16_f32",
                      "edgec_dequantize_f32_params", fields, inputs=[x.name],
                      outputs=[y.name])


def _bias_s64(graph: Graph, node: Node, name: str, channels: int) -> np.ndarray | None:
    if name == "":
        return None
    t = graph.tensors[name]
    data = np.asarray(t.data) if t.is_const else None
    if data is None or data.dtype != np.int64:
        raise node_error(node, f"bias '{name}' is {'a constant ' if t.is_const else ''}"
                               f"{t.dtype}; 16x8 fully connected needs a constant int64 bias")
    if data.size != channels:
        raise node_error(node, f"bias '{name}' has {data.size} values for {channels} channels")
    return data.reshape(-1)


def _check_acc(node: Node, w_per_channel: np.ndarray, b: np.ndarray | None) -> None:
    bound = np.abs(w_per_channel.astype(np.int64)).sum(axis=1) * 32768
    if b is not None:
        bound = bound + np.abs(b)
    if np.any(bound >= _ACC_LIMIT):
        raise node_error(node, f"the int64 accumulator could leave +-2^47 (worst case "
                               f"{int(bound.max())}), where TFLite's rescale is defined")


def _check_shift(node: Node, shift: ConstArray) -> None:
    if int(np.max(shift.data)) > 14:
        raise node_error(node, "requantization scale is too large for the 64-bit rescale "
                               "(shift > 14)")


def lower_fully_connected(graph: Graph, node: Node) -> KernelCall:
    x, xq = quant_of(graph, node, input_name(node, 0), ("int16",))
    y, yq = quant_of(graph, node, node.outputs[0], ("int16",))
    w_name = input_name(node, 1)
    w_shape = graph.tensors[w_name].shape if w_name in graph.tensors else ()
    if len(w_shape) != 2:
        raise node_error(node, f"weights must be [C_OUT, C_IN], got shape {w_shape}")
    c_out, c_in = int(w_shape[0]), int(w_shape[1])
    w_data, w_scales, per_channel = weights(graph, node, w_name, c_out, axis=0)
    if _size(x) % c_in:
        raise node_error(node, f"input of {_size(x)} values is not a multiple of C_IN={c_in}")
    rows = _size(x) // c_in
    if _size(y) != rows * c_out:
        raise node_error(node, f"output shape {list(y.shape)} is not [{rows}, {c_out}]")
    b = _bias_s64(graph, node, input_name(node, 2), c_out)
    _check_acc(node, w_data.reshape(c_out, c_in), b)
    if per_channel:
        mult, shift = per_channel_multipliers(node, xq.scale, w_scales, yq.scale)
    else:  # GetQuantizedConvolutionMultipler: a float32 product of the scales
        m, s = quantize_multiplier(float(np.float32(xq.scale) * np.float32(w_scales[0]))
                                   / yq.scale)
        mult = ConstArray("int32_t", np.full(c_out, m, np.int32))
        shift = ConstArray("int32_t", np.full(c_out, s, np.int32))
    _check_shift(node, shift)
    act_min, act_max = activation_range(node.attrs.get("act_min"), node.attrs.get("act_max"),
                                        yq.scale, 0, *_RANGE["int16"])
    fields = {"rows": rows, "in_depth": c_in, "out_depth": c_out,
              "act_min": act_min, "act_max": act_max,
              "weights": ConstArray("int8_t", np.ascontiguousarray(w_data, np.int8).reshape(-1)),
              "bias": None if b is None else ConstArray("int64_t", b.astype(np.int64)),
              "output_multiplier": mult, "output_shift": shift}
    return KernelCall(node.name, node.op, "edgec_fully_connected_s16",
                      "edgec_fully_connected_s16_params", fields, inputs=[x.name],
                      outputs=[y.name], macs=rows * c_in * c_out)


def lower_conv2d(graph: Graph, node: Node) -> KernelCall:
    """conv.cc, 16x8 per-channel path: int16 input and output, int8 [C_OUT, KH, KW, C_IN]
    weights, int64 bias; per-channel multipliers as the int8 conv (in double)."""
    x, xq = quant_of(graph, node, input_name(node, 0), ("int16",))
    y, yq = quant_of(graph, node, node.outputs[0], ("int16",))
    in_dims, out_dims = dims4(node, x), dims4(node, y)
    c_in, c_out = in_dims[3], out_dims[3]
    w_data, w_scales, _ = weights(graph, node, input_name(node, 1), c_out, axis=0)
    if w_data.ndim != 4 or w_data.shape[0] != c_out or w_data.shape[3] != c_in:
        raise node_error(node, f"weights shape {w_data.shape} does not match [C_OUT={c_out}, "
                               f"KH, KW, C_IN={c_in}]")
    kh, kw = int(w_data.shape[1]), int(w_data.shape[2])
    strides, dilations = pair(node, "strides", (1, 1)), pair(node, "dilations", (1, 1))
    pads = pads4(node)
    if out_dims[0] != in_dims[0]:
        raise node_error(node, f"batch {in_dims[0]} in, {out_dims[0]} out")
    check_spatial(node, in_dims[1:3], out_dims[1:3], (kh, kw), strides, dilations, pads)
    b = _bias_s64(graph, node, input_name(node, 2), c_out)
    _check_acc(node, w_data.reshape(c_out, -1), b)
    mult, shift = per_channel_multipliers(node, xq.scale, w_scales, yq.scale)
    _check_shift(node, shift)
    act_min, act_max = activation_range(node.attrs.get("act_min"), node.attrs.get("act_max"),
                                        yq.scale, 0, *_RANGE["int16"])
    fields = {"input": in_dims, "filter": (c_out, kh, kw, c_in), "output": out_dims,
              "stride": strides, "dilation": dilations, "padding": (pads[0], pads[1]),
              "act_min": act_min, "act_max": act_max,
              "weights": ConstArray("int8_t", np.ascontiguousarray(w_data, np.int8).reshape(-1)),
              "bias": None if b is None else ConstArray("int64_t", b.astype(np.int64)),
              "output_multiplier": mult, "output_shift": shift}
    on, oh, ow, _ = out_dims
    return KernelCall(node.name, node.op, "edgec_conv2d_s16", "edgec_conv2d_s16_params",
                      fields, inputs=[x.name], outputs=[y.name],
                      macs=on * oh * ow * c_out * kh * kw * c_in)


MAX_DEPTH_S16 = 1 << 17  # depth products of at most 2^30: |acc| < 2^47


def lower_batch_matmul(graph: Graph, node: Node) -> KernelCall:
    """batch_matmul.cc on int16 (zero points 0): the int8 lowering's multiplier
    (GetQuantizedConvolutionMultipler) and strides, an int64 accumulator."""
    a, aq = quant_of(graph, node, input_name(node, 0), ("int16",))
    b, bq = quant_of(graph, node, input_name(node, 1), ("int16",))
    y, yq = quant_of(graph, node, node.outputs[0], ("int16",))
    layout, macs = layout_fields(node, a, b, y)
    if layout["depth"] > MAX_DEPTH_S16:
        raise node_error(node, f"depth {layout['depth']} could overflow the 47-bit "
                               f"accumulator of the 64-bit rescale (at most {MAX_DEPTH_S16})")
    real = float(np.float32(aq.scale) * np.float32(bq.scale)) / yq.scale
    mult, shift = quantize_multiplier(real)
    if shift > 14:
        raise node_error(node, f"scale ratio s_a * s_b / s_out = {real:g} is too large for "
                               "the 64-bit rescale (shift > 14)")
    fields = {**layout, "lhs_offset": 0, "rhs_offset": 0, "output_offset": 0,
              "output_multiplier": mult, "output_shift": shift,
              "act_min": _RANGE["int16"][0], "act_max": _RANGE["int16"][1]}
    return KernelCall(node.name, node.op, "edgec_batch_matmul_s16", "edgec_batch_matmul_params",
                      fields, inputs=[a.name, b.name], outputs=[y.name], macs=macs)


def lower_add(graph: Graph, node: Node) -> KernelCall:
    """add.cc Prepare, general int16 path (pot_scale_int16 false, as the converter writes
    it): left shift 15, both inputs rescaled to 2 max(s1, s2) / 2^15."""
    a, aq = quant_of(graph, node, input_name(node, 0), ("int16",))
    b, bq = quant_of(graph, node, input_name(node, 1), ("int16",))
    y, yq = quant_of(graph, node, node.outputs[0], ("int16",))
    shape = broadcast_fields(node, a, b, y)
    twice_max_input_scale = 2.0 * max(aq.scale, bq.scale)
    real_out = twice_max_input_scale / f32((1 << ADD_LEFT_SHIFT_S16) * yq.scale)
    try:
        m1, s1 = quantize_multiplier_smaller_than_one(aq.scale / twice_max_input_scale)
        m2, s2 = quantize_multiplier_smaller_than_one(bq.scale / twice_max_input_scale)
        mo, so = quantize_multiplier_smaller_than_one(real_out)
    except ValueError as e:
        raise node_error(node, f"input/output scales {aq.scale:g}, {bq.scale:g} -> "
                               f"{yq.scale:g} are out of the int16 ADD range ({e})") from None
    act_min, act_max = activation_range(node.attrs.get("act_min"), node.attrs.get("act_max"),
                                        yq.scale, 0, *_RANGE["int16"])
    fields = {**shape, "left_shift": ADD_LEFT_SHIFT_S16,
              "input1_offset": 0, "input1_multiplier": m1, "input1_shift": s1,
              "input2_offset": 0, "input2_multiplier": m2, "input2_shift": s2,
              "output_offset": 0, "output_multiplier": mo, "output_shift": so,
              "act_min": act_min, "act_max": act_max}
    return KernelCall(node.name, node.op, "edgec_add_s16", "edgec_add_params", fields,
                      inputs=[a.name, b.name], outputs=[y.name],
                      inplace=_inplace_binary(a, b, y))


def lower_mul(graph: Graph, node: Node) -> KernelCall:
    """mul.cc Prepare: s1 * s2 / s_out in float32, QuantizeMultiplier; the product of two
    int16 values (|.| <= 2^30) leaves no room for a left shift."""
    a, aq = quant_of(graph, node, input_name(node, 0), ("int16",))
    b, bq = quant_of(graph, node, input_name(node, 1), ("int16",))
    y, yq = quant_of(graph, node, node.outputs[0], ("int16",))
    shape = broadcast_fields(node, a, b, y)
    real = float(np.float32(aq.scale) * np.float32(bq.scale) / np.float32(yq.scale))
    mult, shift = quantize_multiplier(real)
    if shift > 0:
        raise node_error(node, f"scale ratio s1 * s2 / s_out = {real:g} is too large for "
                               "int16 MUL (>= 1: the int16 product would overflow)")
    act_min, act_max = activation_range(node.attrs.get("act_min"), node.attrs.get("act_max"),
                                        yq.scale, 0, *_RANGE["int16"])
    fields = {**shape, "input1_offset": 0, "input2_offset": 0, "output_offset": 0,
              "output_multiplier": mult, "output_shift": shift,
              "act_min": act_min, "act_max": act_max}
    return KernelCall(node.name, node.op, "edgec_mul_s16", "edgec_mul_params", fields,
                      inputs=[a.name, b.name], outputs=[y.name],
                      inplace=_inplace_binary(a, b, y))


def gen_lut(func, input_min: float, input_max: float, output_min: float = -1.0,
            output_max: float = 1.0) -> np.ndarray:
    """TFLite's gen_lut<double, int16_t, int16_t> (kernels/internal/common.h): 512 samples
    of func over [input_min, input_max) in Q0.15, each biased by half the interpolation error
    at its interval's midpoint, and a 513th for the last slope; all in double."""
    steps = 512
    step = (input_max - input_min) / steps
    half_step = step / 2
    inv = 65536.0 / (output_max - output_min)

    def rnd(v: float) -> float:  # TfLiteRound: half away from zero
        return math.copysign(math.floor(abs(v) + 0.5), v)

    lut = np.empty(steps + 1, np.int16)
    for i in range(steps):
        val = func(input_min + i * step)
        val_mid = func(input_min + i * step + half_step)
        val_next = func(input_min + (i + 1) * step)
        sample = rnd(val * inv)
        interp = rnd((val_next * inv + rnd(val * inv)) / 2)
        bias = rnd((interp - rnd(val_mid * inv)) / 2)
        lut[i] = int(min(max(sample - bias, -32768.0), 32767.0))
    lut[steps] = int(min(max(rnd(func(input_max) * inv), -32768.0), 32767.0))
    return lut


SOFTMAX_OUTPUT_SCALE = 1.0 / 32768  # activations.cc: the int16 output is Q0.15


def lower_softmax(graph: Graph, node: Node) -> KernelCall:
    """activations.cc SoftmaxPrepare for int16: input differences scaled so that [-65535, 0]
    is [-10, 0], exp and 1/(1 + x) from 513-entry tables (gen_lut)."""
    x, xq = quant_of(graph, node, input_name(node, 0), ("int16",))
    y, yq = quant_of(graph, node, node.outputs[0], ("int16",))
    _same_size(node, x, y)
    if abs(yq.scale - SOFTMAX_OUTPUT_SCALE) > 0.001 * SOFTMAX_OUTPUT_SCALE:
        raise node_error(node, f"int16 softmax output scale {yq.scale:g} is not 1/32768, the "
                               "scale of the kernel's Q0.15 result")
    beta = float(node.attrs.get("beta", 1.0))
    mult, shift = quantize_multiplier(f32(xq.scale) * f32(beta) / (10.0 / 65535.0))
    if shift > 14:
        raise node_error(node, f"beta * input scale {beta * xq.scale:g} is too large for the "
                               "int16 softmax (65535 << shift must fit int32)")
    depth = int(x.shape[-1]) if x.shape else 1
    fields = {"rows": _size(x) // depth, "depth": depth, "input_multiplier": mult,
              "input_left_shift": shift,
              "exp_lut": ConstArray("int16_t", gen_lut(math.exp, -10.0, 0.0)),
              "one_over_one_plus_x_lut": ConstArray(
                  "int16_t", gen_lut(lambda v: 1.0 / (1.0 + v), 0.0, 1.0))}
    return KernelCall(node.name, node.op, "edgec_softmax_s16", "edgec_softmax_s16_params",
                      fields, inputs=[x.name], outputs=[y.name])


LOWERINGS = {
    "softmax": lower_softmax,
    "batch_matmul": lower_batch_matmul,
    "conv2d": lower_conv2d,
    "mul": lower_mul,
    "quantize": lower_quantize,
    "dequantize": lower_dequantize,
    "fully_connected": lower_fully_connected,
    "add": lower_add,
}
