"""NumPy float reference for the NHWC IR: the ground truth the passes and the quantizer are
checked against.

`run_float` executes every op of toolchain/ops.py in float64 and returns float32. With
`fake_quant=True` it runs a quantized graph as a float simulation instead: constants are
dequantized and every activation is rounded through its QuantParams (quantize, clamp to int8,
dequantize), which is what the QDQ ONNX artifact computes in onnxruntime.

Each result is reshaped to its IR output tensor's shape: ops read bytes by their own params
(e.g. fully_connected views x as [-1, C_IN]), so an aliased reshape costs nothing here either.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .errors import EdgecError
from .ir import Graph, QuantParams, Tensor


def to_ir_layout(array: np.ndarray, layout: str) -> np.ndarray:
    """Source-layout array (e.g. NCHW) -> the IR's NHWC."""
    return np.transpose(array, (0, 2, 3, 1)) if layout == "NCHW" else array


def to_source_layout(array: np.ndarray, layout: str) -> np.ndarray:
    """IR (NHWC) array -> the graph input/output's source layout."""
    return np.transpose(array, (0, 3, 1, 2)) if layout == "NCHW" else array


def run_float(graph: Graph, inputs: dict[str, np.ndarray], *, fake_quant: bool = False,
              keep_all: bool = False) -> dict[str, np.ndarray]:
    """Run `graph` on NHWC `inputs`; returns the graph outputs (every tensor if keep_all)."""
    values: dict[str, np.ndarray] = {}
    for name in graph.inputs:
        if name not in inputs:
            raise EdgecError(f"run_float: missing input '{name}'")
        t = graph.tensors[name]
        x = np.asarray(inputs[name], np.float64)
        if x.size != int(np.prod(t.shape, dtype=np.int64)):
            raise EdgecError(f"input '{name}' of shape {list(t.shape)} cannot take "
                             f"{list(x.shape)} values (edgec runs one sample at a time)")
        x = x.reshape(t.shape)
        values[name] = _fake_quant(x, t) if fake_quant else x
    for node in graph.nodes:
        args = [None if n == "" else values[n] if n in values else _const(graph.tensors[n])
                for n in node.inputs]
        kernel = _KERNELS.get(node.op)
        if kernel is None:
            raise EdgecError(f"run_float: no reference for op '{node.op}' (node '{node.name}')")
        y = kernel(node.attrs, *args)
        y = _clamp(y, node.attrs.get("act_min"), node.attrs.get("act_max"))  # fused activation
        out = graph.tensors[node.outputs[0]]
        if y.size != int(np.prod(out.shape, dtype=np.int64)):
            raise EdgecError(f"node '{node.name}' ({node.op}) computes shape {list(y.shape)} "
                             f"but its output '{out.name}' is declared {list(out.shape)}")
        y = y.reshape(out.shape)
        # a quantize op rounds to its output's grid in either mode (values stay real here)
        rounds = fake_quant or node.op == "quantize"
        values[node.outputs[0]] = _fake_quant(y, out) if rounds else y
    names = values if keep_all else graph.outputs
    return {n: values[n].astype(np.float32) for n in names}


# --- quantization simulation ---------------------------------------------------------------

def _per_axis(q: QuantParams, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    scale, zp = np.asarray(q.scale, np.float64), np.asarray(q.zero_point, np.float64)
    if q.axis is None:
        return scale, zp
    shape = [1] * ndim
    shape[q.axis] = -1
    return scale.reshape(shape), zp.reshape(shape)


def dequantize(t: Tensor) -> np.ndarray:
    """A quantized constant's real values (float64)."""
    scale, zp = _per_axis(t.quant, t.data.ndim)
    return (t.data.astype(np.float64) - zp) * scale


def _const(t: Tensor) -> np.ndarray:
    if t.data is None:
        raise EdgecError(f"run_float: tensor '{t.name}' is read before it is produced")
    if t.quant is not None and t.dtype != "float32":
        return dequantize(t)
    return t.data.astype(np.float64)


def _fake_quant(x: np.ndarray, t: Tensor) -> np.ndarray:
    if t.quant is None or t.dtype == "float32":
        return x
    scale, zp = _per_axis(t.quant, x.ndim)
    lo, hi = np.iinfo(t.dtype).min, np.iinfo(t.dtype).max
    return (np.clip(np.round(x / scale) + zp, lo, hi) - zp) * scale


# --- kernels (NHWC, float64) -----------------------------------------------------------------

def _clamp(x, lo, hi):
    if lo is not None:
        x = np.maximum(x, lo)
    if hi is not None:
        x = np.minimum(x, hi)
    return x


def _windows(x, kernel, strides, dilations, pads, fill=0.0):
    """Padded sliding windows of an NHWC x: [N, OH, OW, C, KH, KW]."""
    top, left, bottom, right = pads
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=fill)
    (kh, kw), (sh, sw), (dh, dw) = kernel, strides, dilations
    win = sliding_window_view(xp, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(1, 2))
    return win[:, ::sh, ::sw, :, ::dh, ::dw]


def _conv2d(a, x, w, b=None):
    win = _windows(x, w.shape[1:3], a["strides"], a["dilations"], a["pads"])
    y = np.einsum("nhwcij,oijc->nhwo", win, w, optimize=True)
    return y if b is None else y + b


def _depthwise_conv2d(a, x, w, b=None):
    win = _windows(x, w.shape[1:3], a["strides"], a["dilations"], a["pads"])
    win = np.repeat(win, a.get("depth_multiplier", 1), axis=3)  # out channel c*m+j reads c
    y = np.einsum("nhwcij,ijc->nhwc", win, w[0], optimize=True)
    return y if b is None else y + b


def _fully_connected(a, x, w, b=None):
    y = x.reshape(-1, w.shape[1]) @ w.T
    return y if b is None else y + b


def _binary_operands(x, y):
    """Same element counts: a view of one shape (flat, as the kernels read it); otherwise
    NumPy broadcasting, as TFLite's."""
    if x.size == y.size:
        return x, y.reshape(x.shape)
    return x, y


def _add(a, x, y):
    x, y = _binary_operands(x, y)
    return x + y


def _mul(a, x, y):
    x, y = _binary_operands(x, y)
    return x * y


def _hard_swish(a, x):
    return x * np.clip(x + 3.0, 0.0, 6.0) / 6.0


def _leaky_relu(a, x):
    return np.where(x >= 0, x, float(a["alpha"]) * x)


def _max_pool2d(a, x):
    return _windows(x, a["kernel"], a["strides"], (1, 1), a["pads"], -np.inf).max(axis=(4, 5))


def _avg_pool2d(a, x):
    total = _windows(x, a["kernel"], a["strides"], (1, 1), a["pads"]).sum(axis=(4, 5))
    ones = np.ones(x.shape[:3] + (1,))
    count = _windows(ones, a["kernel"], a["strides"], (1, 1), a["pads"]).sum(axis=(4, 5))
    return total / count  # the count excludes padding (TFLite)


def _mean(a, x):
    return x.mean(axis=tuple(a["axes"]), keepdims=bool(a.get("keepdims", True)))


def _softmax(a, x):
    z = x * a.get("beta", 1.0)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _pad(a, x):
    return np.pad(x, [tuple(p) for p in a["paddings"]],
                  constant_values=float(a.get("value") or 0.0))


def _strided_slice(a, x):
    """TFLite's index resolution (shared with the int8 lowering); run_float reshapes the
    result to the output's shape, which drops the shrunk axes."""
    from .lower.data_movement import resolve_strided_slice
    axes = resolve_strided_slice(x.shape, a["begin"], a["end"], a["strides"],
                                 int(a.get("begin_mask", 0)), int(a.get("end_mask", 0)),
                                 int(a.get("shrink_axis_mask", 0)), bool(a.get("offset")))
    return x[np.ix_(*[s + st * np.arange(n) for s, n, st in axes])]


def _resize_nearest(a, x):
    from .lower.data_movement import nearest_indices
    ys, xs = (nearest_indices(x.shape[k], int(a["size"][k - 1]), bool(a.get("align_corners")),
                              bool(a.get("half_pixel_centers"))) for k in (1, 2))
    return x[:, ys][:, :, xs]


def _batch_matmul(a, x, y):
    x = np.swapaxes(x, -1, -2) if a.get("adj_x") else x
    y = np.swapaxes(y, -1, -2) if a.get("adj_y") else y
    return x @ y


def _gelu(a, x):
    if a.get("approximate"):
        return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))
    from scipy.special import erf
    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


def _layer_norm(a, x, gamma, beta):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    eps = a.get("epsilon")
    return (x - mean) / np.sqrt(var + (1e-5 if eps is None else eps)) * gamma + beta


def _batch_norm(a, x, scale, bias, mean, var):
    return (x - mean) / np.sqrt(var + a["epsilon"]) * scale + bias


_KERNELS = {
    "conv2d": _conv2d,
    "depthwise_conv2d": _depthwise_conv2d,
    "fully_connected": _fully_connected,
    "add": _add,
    "max_pool2d": _max_pool2d,
    "avg_pool2d": _avg_pool2d,
    "mean": _mean,
    "softmax": _softmax,
    "reshape": lambda a, x: x,
    "relu": lambda a, x: np.maximum(x, 0.0),
    "clip": lambda a, x: _clamp(x, a.get("act_min"), a.get("act_max")),
    "mul": _mul,
    "logistic": lambda a, x: 0.5 * (1.0 + np.tanh(0.5 * x)),  # = 1 / (1 + e^-x), no overflow
    "tanh": lambda a, x: np.tanh(x),
    "hard_swish": _hard_swish,
    "leaky_relu": _leaky_relu,
    "pad": _pad,
    "transpose": lambda a, x: np.transpose(x, a["perm"]),
    "concat": lambda a, *xs: np.concatenate(xs, axis=int(a["axis"])),
    "strided_slice": _strided_slice,
    "resize_nearest": _resize_nearest,
    "batch_norm": _batch_norm,
    "batch_matmul": _batch_matmul,
    "gelu": _gelu,
    "layer_norm": _layer_norm,
    "constant": lambda a, c: c,
    "identity": lambda a, x: x,
    # Boundaries of an imported int8 model; this executor works on real values, so both pass
    # them through (run_float rounds a quantize op's output to its grid).
    "quantize": lambda a, x: x,
    "dequantize": lambda a, x: x,
}
