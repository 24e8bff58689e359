"""Activation ranges for post-training quantization, collected on the source float ONNX model.

onnxruntime's MinMax calibrator runs the *source* model (the one the user gave us, in its own
layout) and records min/max of every float tensor. The frontend and passes keep ONNX tensor
names, so those ranges name IR tensors directly; ranges are per-tensor, so the NCHW/NHWC
difference does not matter.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx

from ..errors import EdgecError
from ..float_exec import run_float, to_ir_layout
from ..ir import Graph


def generate_calibration_data(shape: tuple[int, ...], n: int = 32, seed: int = 0) -> np.ndarray:
    """Standard-normal stand-in samples [n, *shape[1:]] for `shape` (batch first), when the
    user has no calibration data: ranges then reflect N(0, 1) inputs, not the real ones."""
    return np.random.default_rng(seed).standard_normal((n, *shape[1:])).astype(np.float32)


def source_input_shape(graph: Graph) -> tuple[int, ...]:
    """The (single) graph input's shape in the source layout, batch 1."""
    name = graph.inputs[0]
    shape = graph.tensors[name].shape
    if graph.io_layout.get(name) == "NCHW":
        n, h, w, c = shape
        return (n, c, h, w)
    return tuple(shape)


def check_samples(graph: Graph, samples: np.ndarray) -> np.ndarray:
    """samples [N, *input_shape[1:]] in the source layout, or an EdgecError naming both shapes."""
    if len(graph.inputs) != 1:
        raise EdgecError(f"calibration supports single-input models; this one has inputs "
                         f"{graph.inputs}")
    expected = source_input_shape(graph)
    samples = np.asarray(samples)
    if samples.ndim != len(expected) or tuple(samples.shape[1:]) != tuple(expected[1:]) \
            or samples.shape[0] < 1:
        raise EdgecError(
            f"calibration data has shape {list(samples.shape)} but the model input "
            f"'{graph.inputs[0]}' is {list(expected)}: expected [N, "
            f"{', '.join(str(d) for d in expected[1:])}] (N samples, source layout)")
    return samples.astype(np.float32)


class _Reader:
    """onnxruntime CalibrationDataReader: one batch-1 sample per call."""

    def __init__(self, name: str, samples: np.ndarray):
        self.name, self.samples, self.i = name, samples, 0

    def get_next(self):
        if self.i >= len(self.samples):
            return None
        self.i += 1
        return {self.name: self.samples[self.i - 1][None]}

    def rewind(self):
        self.i = 0


def calibrate(onnx_model: onnx.ModelProto | str | Path | None, graph: Graph,
              samples: np.ndarray) -> dict[str, tuple[float, float]]:
    """{IR activation tensor name: (min, max)} over `samples` [N, *input_shape[1:]].

    With no ONNX model (a float .tflite source) every range comes from the float executor.
    """
    from onnxruntime.quantization.calibrate import CalibrationMethod, create_calibrator

    samples = check_samples(graph, samples)
    # a `constant` node's output takes the params of what reads it (no range needed)
    needed = [*graph.inputs, *(o for n in graph.nodes if n.op != "constant" for o in n.outputs)]
    if onnx_model is None:
        return _ranges_from_float(graph, samples, needed)
    if not isinstance(onnx_model, onnx.ModelProto):
        onnx_model = onnx.load(str(onnx_model))
    with tempfile.TemporaryDirectory(prefix="edgec_calib_") as tmp:
        path = Path(tmp) / "model.onnx"
        onnx.save(onnx_model, str(path))
        try:
            calibrator = create_calibrator(path, None,
                                           augmented_model_path=str(Path(tmp) / "aug.onnx"),
                                           calibrate_method=CalibrationMethod.MinMax)
            calibrator.collect_data(_Reader(graph.inputs[0], samples))
            data = calibrator.compute_data().data
        except Exception as e:  # onnxruntime's own exception types (Fail, InvalidGraph...)
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise EdgecError(f"{graph.meta.get('source', 'the model')}: onnxruntime cannot "
                             f"run the model for calibration: {first[:300]}") from None
    ranges = {name: (float(np.min(d.range_value[0])), float(np.max(d.range_value[1])))
              for name, d in data.items()}
    missing = [t for t in needed if t not in ranges]
    if missing:
        # An IR tensor the source model does not have (a pass made it, or onnxruntime skipped
        # it): take its range from the float reference executor on the same samples instead.
        ranges.update(_ranges_from_float(graph, samples, missing))
    return {t: ranges[t] for t in needed}


def _ranges_from_float(graph: Graph, samples: np.ndarray, names: list[str]):
    layout = graph.io_layout.get(graph.inputs[0], "")
    lo = {n: np.inf for n in names}
    hi = {n: -np.inf for n in names}
    for s in samples:
        values = run_float(graph, {graph.inputs[0]: to_ir_layout(s[None], layout)}, keep_all=True)
        for n in names:
            lo[n], hi[n] = min(lo[n], float(values[n].min())), max(hi[n], float(values[n].max()))
    return {n: (lo[n], hi[n]) for n in names}
