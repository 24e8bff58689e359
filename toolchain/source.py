"""Which frontend reads the user's file: by content and extension, into float ONNX + IR."""
from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from .errors import EdgecError
from .ir import Graph
from .options import CompileOptions

TORCH_SUFFIXES = (".pt", ".pt2", ".pth", ".ptl")
FORMATS = "TorchScript or torch.export archives (.pt, .pt2), ONNX (.onnx)"


@dataclass
class Source:
    onnx: onnx.ModelProto  # float model in the source layout: calibration and float reference
    graph: Graph  # the same model in the IR (NHWC)
    input_shape: tuple[int, ...]  # source layout, batch 1
    warnings: list[str] = field(default_factory=list)


def load_source(opts: CompileOptions) -> Source:
    path = Path(opts.model)
    if not path.is_file():
        raise EdgecError(f"model file '{path}' not found")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        model = _read_onnx(path)
    elif suffix in TORCH_SUFFIXES or zipfile.is_zipfile(path):
        from .frontend.torch import load_torch
        shape = opts.input_shape or _shape_from_calib(opts.calib)
        model = load_torch(path, input_shape=shape, trust_pickle=opts.trust_pickle)
    elif suffix == ".tflite":
        raise EdgecError(f"'{path}': the .tflite frontend is not available yet; "
                         f"accepted formats: {FORMATS}")
    else:
        raise EdgecError(f"'{path}': unknown model format '{suffix}'; accepted: {FORMATS}")
    from .frontend.onnx import load_onnx
    graph = load_onnx(model)
    graph.meta.setdefault("source", str(path))
    return Source(onnx=model, graph=graph, input_shape=_onnx_input_shape(model))


def _read_onnx(path: Path) -> onnx.ModelProto:
    try:
        return onnx.load(str(path))
    except Exception as e:  # protobuf raises several types for damaged files
        raise EdgecError(f"'{path}' is not a readable ONNX file ({type(e).__name__}); "
                         f"re-export it with torch.onnx.export or check the download") from None


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
