"""PyTorch frontend: a saved model file -> a float ONNX model (then frontend/onnx.py imports it).

Accepted, detected from the file's contents (not its extension):
  - torch.export archives (torch.export.save, ".pt2"): exported with the dynamo exporter, the
    only one that takes an ExportedProgram; the input shape comes from the archive.
  - TorchScript archives (torch.jit.save): exported with the TorchScript ("legacy") exporter,
    the only one that takes a ScriptModule (the dynamo one re-traces Python code, which a
    ScriptModule does not have).
  - a pickled nn.Module (torch.save(model)) only with trust_pickle: unpickling runs code from
    the file. Exported with dynamo, falling back to the TorchScript exporter if torch.export
    cannot capture the model.
A state_dict is refused: it holds weights, not the network.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import pickle
import warnings
import zipfile
from pathlib import Path

import onnx

from ..errors import EdgecError

try:
    import torch
except ImportError as e:  # this module is imported only when a PyTorch file is loaded
    raise EdgecError("PyTorch models need torch: pip install 'edgec[torch]'") from e

DYNAMO_OPSET = 18  # the dynamo exporter's own minimum
LEGACY_OPSET = 17
_SAVE_HINT = ("save the whole model with torch.jit.save(torch.jit.trace(model.eval(), x), path) "
              "or torch.export.save(torch.export.export(model.eval(), (x,)), path)")


def load_torch(path: str | os.PathLike, input_shape: tuple | None = None,
               trust_pickle: bool = False) -> onnx.ModelProto:
    """Export a PyTorch model file to a float ONNX ModelProto (eval mode, batch as given)."""
    path = Path(path)
    if not path.is_file():
        raise EdgecError(f"{path}: no such file; pass the path of a PyTorch model")
    kind = detect_format(path)
    if kind == "torch.export":
        return _from_exported_program(path, input_shape)
    if kind == "torchscript":
        try:
            with _quiet():
                module = torch.jit.load(str(path), map_location="cpu").eval()
        except Exception as e:
            raise _read_error(path, e) from e
        return _export(module, _example_args(path, input_shape), path, dynamo=False)
    module = _unpickle_module(path, trust_pickle)
    args = _example_args(path, input_shape)
    try:
        return _export(module, args, path, dynamo=True)
    except EdgecError:  # torch.export could not capture it: trace it instead
        return _export(module, args, path, dynamo=False)


def detect_format(path: Path) -> str:
    """'torch.export' | 'torchscript' | 'pickle', from the file's bytes."""
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
                fmt = [n for n in names if n.endswith("archive_format")]
                if fmt and z.read(fmt[0]).strip() == b"pt2":
                    return "torch.export"
        except Exception as e:  # BadZipFile, OSError, UnicodeDecodeError (member names)...
            raise _read_error(path, e) from e
        if any(n.endswith("/constants.pkl") for n in names) and any("/code/" in n for n in names):
            return "torchscript"
        if any(n.endswith("data.pkl") for n in names):
            return "pickle"
        raise EdgecError(f"{path.name}: a zip archive but not a PyTorch model (expected a "
                         f"TorchScript or torch.export archive)")
    with open(path, "rb") as f:
        head = f.read(2)
    if head[:1] == b"\x80":  # a pickle protocol header: the legacy torch.save format
        return "pickle"
    if head == b"PK":  # a zip header without a readable directory
        raise EdgecError(f"{path.name}: a damaged zip archive (truncated download?); "
                         f"save the model again")
    if path.suffix.lower() == ".onnx":
        raise EdgecError(f"{path.name}: not a PyTorch model file (it looks like ONNX; "
                         f"pass it as an ONNX model)")
    raise EdgecError(f"{path.name}: not a PyTorch model file (expected a TorchScript archive, "
                     f"a torch.export .pt2 archive or a torch.save file)")


def _read_error(path: Path, e: Exception) -> EdgecError:
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return EdgecError(f"{path.name}: could not read the PyTorch file (truncated or corrupt?): "
                      f"{first}")


def _unpickle_module(path: Path, trust_pickle: bool):
    try:
        # The safe unpickler: tensors and containers only, so weights-only files load here.
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if not trust_pickle:
            raise EdgecError(
                f"{path.name}: a pickled PyTorch model (torch.save(model)); loading it executes "
                f"code from the file. If you trust the file, pass --trust-pickle; better, "
                f"{_SAVE_HINT}") from e
        try:
            with _quiet():
                obj = torch.load(str(path), map_location="cpu", weights_only=False)
        except (AttributeError, ModuleNotFoundError) as e2:
            raise EdgecError(f"{path.name}: the pickled model's class cannot be imported "
                             f"({e2}); make its module importable, or {_SAVE_HINT}") from e2
        except Exception as e2:
            raise _read_error(path, e2) from e2
    except Exception as e:
        raise _read_error(path, e) from e
    if isinstance(obj, torch.nn.Module):
        return obj.eval()
    if isinstance(obj, dict):
        raise EdgecError(f"{path.name}: holds a state_dict (weights only); edgec needs the "
                         f"model itself, not only its weights: {_SAVE_HINT}")
    raise EdgecError(f"{path.name}: holds a {type(obj).__name__}, not a model: {_SAVE_HINT}")


def _example_args(path: Path, input_shape) -> tuple:
    if not input_shape:
        raise EdgecError(f"{path.name}: the input shape is unknown; pass --input-shape "
                         f"(e.g. 1,3,32,32) or calibration data")
    g = torch.Generator().manual_seed(0)
    return (torch.randn(tuple(int(d) for d in input_shape), generator=g),)


def _from_exported_program(path: Path, input_shape) -> onnx.ModelProto:
    try:
        with _quiet():
            ep = torch.export.load(str(path))
    except Exception as e:
        raise _read_error(path, e) from e
    _refuse_training_mode(ep, path)
    args = ep.example_inputs[0] if ep.example_inputs else None
    if not args:
        if input_shape:
            args = _example_args(path, input_shape)
        else:  # the program knows its (static) input shapes itself
            user = set(ep.graph_signature.user_inputs)
            vals = [n.meta.get("val") for n in ep.graph.nodes if n.op == "placeholder"
                    and n.name in user]
            if not vals or any(v is None for v in vals):
                raise EdgecError(f"{path.name}: the input shape is unknown; pass --input-shape")
            args = tuple(torch.zeros(tuple(int(d) for d in v.shape)) for v in vals)
    return _export(ep, tuple(args), path, dynamo=True)


def _refuse_training_mode(ep, path: Path) -> None:
    """An ExportedProgram cannot be switched to eval(): refuse one captured in train mode."""
    for n in ep.graph.nodes:
        name = str(n.target)
        if (("batch_norm" in name and len(n.args) > 5 and n.args[5] is True)
                or ("dropout" in name and len(n.args) > 2 and n.args[2] is True)):
            raise EdgecError(f"{path.name}: the program was exported in training mode (node "
                             f"'{n.name}'); call model.eval() before torch.export.export")


@contextlib.contextmanager
def _quiet():
    """Keep the exporters' progress prints, warnings and log lines off the user's terminal."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo",
                                              "torch._export", "torch.fx")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


@contextlib.contextmanager
def _mha_fastpath_off():
    """nn.MultiheadAttention in eval mode without grad takes a fused "fast path"
    (aten::_native_multi_head_attention) that the TorchScript exporter cannot export; its
    plain path exports as MatMul / Softmax ops."""
    mha = getattr(torch.backends, "mha", None)
    if mha is None or not hasattr(mha, "set_fastpath_enabled"):
        yield
        return
    before = mha.get_fastpath_enabled()
    mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        mha.set_fastpath_enabled(before)


def _export(model, args: tuple, path: Path, dynamo: bool) -> onnx.ModelProto:
    names = ["input"] if len(args) == 1 else [f"input_{i}" for i in range(len(args))]
    try:
        with _quiet(), torch.no_grad(), _mha_fastpath_off():
            if dynamo:
                program = torch.onnx.export(model, args, dynamo=True, opset_version=DYNAMO_OPSET,
                                            input_names=names, verbose=False, report=False)
                proto = program.model_proto
            else:
                buf = io.BytesIO()
                torch.onnx.export(model, args, buf, dynamo=False, opset_version=LEGACY_OPSET,
                                  input_names=names, do_constant_folding=True)
                proto = onnx.load_from_string(buf.getvalue())
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        exporter = "torch.export" if dynamo else "TorchScript"
        raise EdgecError(f"{path.name}: exporting to ONNX failed ({exporter} exporter): "
                         f"{first}") from e
    proto.graph.name = path.name  # load_onnx names the source in its messages by this
    return proto
