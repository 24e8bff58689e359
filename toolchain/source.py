"""Which frontend reads the user's file: by content and extension, into float ONNX + IR."""
from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from .errors import EdgecError
from .ir import Graph, verify
from .options import CompileOptions

TORCH_SUFFIXES = (".pt", ".pt2", ".pth", ".ptl")
FORMATS = "TorchScript or torch.export archives (.pt, .pt2), ONNX (.onnx), TFLite (.tflite)"


@dataclass
class Source:
    # Float model in the source layout, for calibration and the float reference (a QDQ
    # model as is); None for .tflite, where LiteRT runs the original file instead.
    onnx: onnx.ModelProto | None
    graph: Graph  # the same model in the IR (NHWC)
    input_shape: tuple[int, ...]  # source layout, batch 1
    tflite: Path | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def quantized(self) -> bool:
        """Already int8 (a quantized .tflite or QDQ .onnx): PTQ is skipped, its parameters
        are kept."""
        return bool(self.graph.meta.get("quantized"))

    def float_reference(self, xs: np.ndarray) -> list[np.ndarray]:
        """The float source model's (first) output on each of xs (N, *input without batch;
        source layout)."""
        return [outs[0] for outs in self.float_outputs(xs)]

    def float_outputs(self, xs: np.ndarray) -> list[list[np.ndarray]]:
        """Every output of the float source model, in its order, on each of xs."""
        if self.onnx is not None:
            import onnxruntime as ort
            try:
                sess = ort.InferenceSession(self.onnx.SerializeToString(),
                                            providers=["CPUExecutionProvider"])
                name = sess.get_inputs()[0].name
                return [[y[0] for y in sess.run(None, {name: x[None]})] for x in xs]
            except Exception as e:  # onnxruntime's own exception types
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise EdgecError(f"onnxruntime cannot run the float model: {first[:300]}") \
                    from None
        from .litert_ref import run_litert
        try:
            outs = run_litert(self.tflite, [xs])
        except EdgecError:
            raise
        except Exception as e:  # LiteRT's own errors (RuntimeError, bad names...)
            raise EdgecError(f"LiteRT cannot run the float model: {type(e).__name__}: "
                             f"{str(e).strip()[:300]}") from None
        return [[o[k] for o in outs] for k in range(len(xs))]


def load_source(opts: CompileOptions) -> Source:
    path = Path(opts.model)
    if not path.is_file():
        raise EdgecError(f"model file '{path}' not found")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        model = _read_onnx(path)
        from .frontend.onnx_qdq import is_qdq, load_onnx_qdq
        if is_qdq(model, path.name):  # pre-quantized (QDQ): keep its numbers, like int8 .tflite
            graph = load_onnx_qdq(model, io=opts.io, source=path.name)
            graph.meta.setdefault("source", str(path))
            warnings = [] if opts.calib is None else [
                f"{path.name} is already quantized (QDQ): --calib is not used to calibrate, "
                f"only as test inputs"]
            return Source(onnx=model, graph=graph, input_shape=_onnx_input_shape(model),
                          warnings=warnings)
    elif suffix in TORCH_SUFFIXES or zipfile.is_zipfile(path):
        from .frontend.torch import load_torch
        shape = opts.input_shape or _shape_from_calib(opts.calib)
        model = load_torch(path, input_shape=shape, trust_pickle=opts.trust_pickle)
    elif suffix == ".tflite":
        from .frontend.tflite import load_tflite
        graph = load_tflite(path, io=opts.io)
        graph.meta.setdefault("source", str(path))
        verify(graph)  # a corrupt file may declare no input at all
        shape = tuple(graph.tensors[graph.inputs[0]].shape)
        return Source(onnx=None, graph=graph, input_shape=shape, tflite=path)
    else:
        raise EdgecError(f"'{path}': unknown model format '{suffix}'; accepted: {FORMATS}")
    from .frontend.onnx import load_onnx
    graph = load_onnx(model)
    graph.meta.setdefault("source", str(path))
    return Source(onnx=model, graph=graph, input_shape=_onnx_input_shape(model))


def _read_onnx(path: Path) -> onnx.ModelProto:
    try:
        model = onnx.load(str(path))
    except Exception as e:  # protobuf raises several types for damaged files
        raise EdgecError(f"'{path}' is not a readable ONNX file ({type(e).__name__}); "
                         f"re-export it with torch.onnx.export or check the download") from None
    try:  # a damaged file can still parse: the checker catches what onnxruntime would refuse
        onnx.checker.check_model(model)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise EdgecError(f"'{path}' is not a valid ONNX model: {first}") from None
    return model


def _shape_from_calib(calib: Path | None) -> tuple[int, ...] | None:
    """A TorchScript file has no input shape: take it from the calibration samples."""
    if calib is None:
        return None
    from .calibdata import read_samples
    samples = read_samples(calib)
    return (1, *samples.shape[1:])


def _onnx_input_shape(model: onnx.ModelProto) -> tuple[int, ...]:
    inits = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise EdgecError(f"the model has {len(inputs)} inputs; edgec compiles "
                         f"single-input models for now")
    dims = inputs[0].type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1
                 for d in dims)
