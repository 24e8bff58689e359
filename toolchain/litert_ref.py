"""LiteRT (TensorFlow Lite) as the reference: run a .tflite model with its *reference* kernels.

`run_litert` builds the interpreter with OpResolverType.BUILTIN_REF, i.e. the kernels of
tensorflow/lite/kernels/internal/reference/ (for int8: reference/integer_ops/*.h and the
kReference paths of activations.cc, fully_connected.cc, pooling.cc, reduce.cc), which TFLM's
kernels and so edgec's runtime_c/kernels/ref mirror bit for bit. The default resolver
(XNNPACK and the optimized kernels) is not the reference: its int8 results may differ by
one in the last bit, so it is never used here.

Samples are batched along a leading axis N and run one invoke per sample (the models have a
batch of 1). Inputs and outputs keep the model's dtypes: float32 for float I/O, int8 for
int8 I/O, with the quantization given by `io_details`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

from .errors import EdgecError

ModelRef = Union[str, os.PathLike, bytes]


@dataclass(frozen=True)
class IODetail:
    """One model input or output as LiteRT sees it."""

    name: str
    index: int  # LiteRT tensor index
    shape: tuple[int, ...]  # with the model's batch (1)
    dtype: str  # "float32" | "int8" | ...
    scale: float  # per-tensor quantization; 0.0 when unquantized
    zero_point: int

    @property
    def quantized(self) -> bool:
        return self.scale != 0.0


def _interpreter(model, preserve_all_tensors: bool = False):
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError as e:
        raise EdgecError("the LiteRT reference needs the ai-edge-litert package "
                         "(pip install 'edgec[tflite]')") from e
    kwargs = dict(experimental_op_resolver_type=OpResolverType.BUILTIN_REF, num_threads=1,
                  experimental_preserve_all_tensors=preserve_all_tensors)
    if isinstance(model, (bytes, bytearray, memoryview)):
        what = "<tflite bytes>"
        kwargs["model_content"] = bytes(model)
    else:
        what = str(model)
        if not Path(model).is_file():
            raise EdgecError(f"'{what}': no such file; pass the path of a .tflite model")
        kwargs["model_path"] = what
    try:
        interp = Interpreter(**kwargs)
        interp.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise EdgecError(f"'{what}': LiteRT cannot load the model: {first}") from None
    return interp


def _detail(d: dict) -> IODetail:
    scale, zp = d["quantization"]
    return IODetail(d["name"], int(d["index"]), tuple(int(v) for v in d["shape"]),
                    np.dtype(d["dtype"]).name, float(scale), int(zp))


def io_details(model: ModelRef) -> tuple[list[IODetail], list[IODetail]]:
    """(inputs, outputs) of the model in LiteRT's order: names, shapes, dtypes, quant."""
    interp = _interpreter(model)
    return ([_detail(d) for d in interp.get_input_details()],
            [_detail(d) for d in interp.get_output_details()])


def tensor_details(model: ModelRef) -> list[dict]:
    """LiteRT's own get_tensor_details(): every tensor with its per-channel quantization."""
    return _interpreter(model).get_tensor_details()


def _check_inputs(details: list[IODetail], inputs) -> tuple[list[np.ndarray], int]:
    """Validate and convert the batches; returns (arrays, N)."""
    if isinstance(inputs, np.ndarray):
        inputs = [inputs]
    inputs = list(inputs)
    if len(inputs) != len(details):
        raise EdgecError(f"the model has {len(details)} input(s) "
                         f"({', '.join(d.name for d in details)}), got {len(inputs)} arrays")
    arrays, n = [], None
    for d, x in zip(details, inputs):
        x = np.asarray(x)
        sample = d.shape[1:]
        if x.ndim != len(d.shape) or tuple(x.shape[1:]) != sample:
            raise EdgecError(f"input '{d.name}' must be a batch of shape [N, "
                             f"{', '.join(map(str, sample))}], got {list(x.shape)}")
        if n is not None and x.shape[0] != n:
            raise EdgecError(f"inputs have different batch sizes ({n} and {x.shape[0]})")
        n = x.shape[0]
        if d.dtype in ("int8", "uint8", "int16", "int32"):
            info = np.iinfo(d.dtype)
            if x.dtype.kind not in "iu" or (x.size and (x.min() < info.min or
                                                        x.max() > info.max)):
                raise EdgecError(f"input '{d.name}' is {d.dtype}: pass integers in "
                                 f"[{info.min}, {info.max}], got {x.dtype}")
        arrays.append(np.ascontiguousarray(x, dtype=d.dtype))
    return arrays, int(n or 0)


def run_litert(model: ModelRef, inputs) -> list[np.ndarray]:
    """Run N samples through LiteRT's reference kernels, one invoke per sample.

    `inputs` holds one array per model input, each [N, *input_shape[1:]] in the input's
    dtype; returns one [N, *output_shape[1:]] array per model output, in the model's order.
    """
    interp = _interpreter(model)
    ins = [_detail(d) for d in interp.get_input_details()]
    outs = [_detail(d) for d in interp.get_output_details()]
    arrays, n = _check_inputs(ins, inputs)
    samples: list[list[np.ndarray]] = [[] for _ in outs]
    for s in range(n):
        for d, x in zip(ins, arrays):
            interp.set_tensor(d.index, x[s:s + 1].reshape(d.shape))
        interp.invoke()
        for acc, o in zip(samples, outs):
            y = interp.get_tensor(o.index)
            # drop the model's batch of 1; an output without one is stacked whole
            acc.append(y[0] if y.ndim and y.shape[0] == 1 else y)
    return [np.stack(acc) if acc else np.empty((0, *o.shape[1:]), o.dtype)
            for acc, o in zip(samples, outs)]


def run_litert_all_tensors(model: ModelRef, inputs) -> dict[str, np.ndarray]:
    """One sample (batch 1) through the reference kernels; every tensor's value by name.

    For localizing a mismatch layer by layer (intermediate tensors are kept alive with
    experimental_preserve_all_tensors, so the arena is not reused).
    """
    interp = _interpreter(model, preserve_all_tensors=True)
    ins = [_detail(d) for d in interp.get_input_details()]
    arrays, n = _check_inputs(ins, inputs)
    if n != 1:
        raise EdgecError(f"run_litert_all_tensors takes one sample, got a batch of {n}")
    for d, x in zip(ins, arrays):
        interp.set_tensor(d.index, x.reshape(d.shape))
    interp.invoke()
    values = {}
    for t in interp.get_tensor_details():
        try:
            values[t["name"]] = np.array(interp.get_tensor(t["index"]))
        except ValueError:  # tensors without data (e.g. optional inputs)
            continue
    return values
