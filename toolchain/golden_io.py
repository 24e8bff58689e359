"""The lowered Program saved beside the firmware (OUT/golden.npz), so `edgec test` can run
edgec's golden model on new inputs without the source model.

    save_program(program, path)      # in the compile's staging dir (toolchain/pipeline.py)
    program = load_program(path)     # a Program that toolchain/golden.py runs

Safe and deterministic: a zip of .npy arrays (numbers only, read with allow_pickle=False)
and one JSON document (`program.json`, stored as a uint8 array) describing the calls. Each
KernelCall keeps every field the golden executor reads; the graph keeps only the activation
tensors' names, shapes and dtypes (the constants live in the calls' ConstArrays). The zip
entries carry a fixed timestamp and are written in a fixed order, so the same Program gives
the same bytes.
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .errors import EdgecError
from .ir import Graph, Tensor
from .lower.program import ConstArray, KernelCall, Program

FORMAT = "edgec-golden"
VERSION = 1
FILE_NAME = "golden.npz"
_DOC = "program.json"
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_ARRAY_KINDS = "biuf"  # numbers only: bool, signed, unsigned, float


def save_program(program: Program, path: str | Path) -> Path:
    """Write `program` to `path` (a .npz); returns the path."""
    arrays: list[tuple[str, np.ndarray]] = []

    def enc(value: Any) -> Any:
        if value is None or isinstance(value, (bool, np.bool_)):
            return None if value is None else {"b": bool(value)}
        if isinstance(value, ConstArray):
            key = f"c{len(arrays)}"
            arrays.append((key, np.ascontiguousarray(value.data)))
            return {"const": key, "ctype": value.ctype}
        if isinstance(value, (int, np.integer)):
            return int(value)
        if isinstance(value, (float, np.floating)):
            return {"f": float(value).hex()}  # exact, NaN/inf included
        if isinstance(value, (tuple, list)):
            return {"t": [enc(v) for v in value]}
        if isinstance(value, str):
            return {"s": value}
        raise TypeError(f"cannot save a kernel field of type {type(value).__name__}")

    graph = program.graph
    names: list[str] = []
    for name in [*graph.inputs, *graph.outputs,
                 *(t for c in program.calls for t in [*c.inputs, *c.outputs]),
                 *(p for p, _ in program.slices.values())]:
        if name and name not in names:
            names.append(name)
    doc = {
        "format": FORMAT, "version": VERSION,
        "inputs": list(graph.inputs), "outputs": list(graph.outputs),
        "tensors": {n: {"shape": [int(d) for d in graph.tensors[n].shape],
                        "dtype": graph.tensors[n].dtype} for n in names},
        "calls": [{"name": c.name, "op": c.op, "kernel": c.kernel,
                   "params_type": c.params_type, "inputs": list(c.inputs),
                   "outputs": list(c.outputs), "view": bool(c.view),
                   "fields": {k: enc(v) for k, v in c.fields.items()}}
                  for c in program.calls],
        "slices": {k: [p, int(r)] for k, (p, r) in program.slices.items()},
    }
    text = json.dumps(doc, separators=(",", ":")).encode("utf-8")  # fields in C order
    entries = [(_DOC, np.frombuffer(text, np.uint8)), *arrays]
    path = Path(path)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for key, arr in entries:
            buf = io.BytesIO()
            np.lib.format.write_array(buf, arr, allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, buf.getvalue())
    return path


def load_program(path: str | Path) -> Program:
    """Read a Program written by save_program; EdgecError if the file is missing or damaged."""
    path = Path(path)
    if not path.is_file():
        raise EdgecError(f"'{path}' not found: the output was compiled by an older edgec; "
                         f"recompile it, or pass the expected outputs with --expect")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        text = arrays.pop(_DOC, np.zeros(0, np.uint8))
        doc = json.loads(bytes(text.astype(np.uint8)).decode("utf-8") or "null")
    except EdgecError:
        raise
    except Exception as e:
        raise EdgecError(f"'{path}' is not a readable golden-model file ({type(e).__name__}); "
                         f"recompile the model") from None
    try:
        return _decode(doc, arrays)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise EdgecError(f"'{path}' is damaged ({type(e).__name__}: {e}); recompile the "
                         f"model") from None


def _decode(doc: Any, arrays: dict[str, np.ndarray]) -> Program:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError("not an edgec golden-model file")
    if doc.get("version") != VERSION:
        raise ValueError(f"format version {doc.get('version')}, this edgec reads {VERSION}")

    def dec(value: Any) -> Any:
        if value is None or isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, dict) and len(value) == 1:
            (kind, v), = value.items()
            if kind == "f":
                return float.fromhex(v)
            if kind == "t":
                return tuple(dec(x) for x in v)
            if kind == "b":
                return bool(v)
            if kind == "s":
                return str(v)
        if isinstance(value, dict) and set(value) == {"const", "ctype"}:
            arr = arrays[value["const"]]
            if arr.dtype.kind not in _ARRAY_KINDS:
                raise ValueError(f"array {value['const']} has dtype {arr.dtype}")
            return ConstArray(str(value["ctype"]), arr)
        raise ValueError(f"unexpected field value {value!r:.60}")

    tensors = {}
    for name, t in doc["tensors"].items():
        shape = tuple(int(d) for d in t["shape"])
        if any(d < 0 for d in shape):
            raise ValueError(f"tensor '{name}' has shape {shape}")
        tensors[str(name)] = Tensor(str(name), shape, str(np.dtype(t["dtype"])))
    calls = []
    for c in doc["calls"]:
        for t in [*c["inputs"], *c["outputs"]]:
            if t not in tensors:
                raise ValueError(f"call '{c['name']}' names unknown tensor '{t}'")
        calls.append(KernelCall(
            name=str(c["name"]), op=str(c["op"]), kernel=str(c["kernel"]),
            params_type=str(c["params_type"]),
            fields={str(k): dec(v) for k, v in c["fields"].items()},
            inputs=[str(t) for t in c["inputs"]], outputs=[str(t) for t in c["outputs"]],
            view=bool(c["view"])))
    for name in [*doc["inputs"], *doc["outputs"]]:
        if name not in tensors:
            raise ValueError(f"graph input/output '{name}' has no tensor")
    graph = Graph(tensors=tensors, nodes=[], inputs=[str(n) for n in doc["inputs"]],
                  outputs=[str(n) for n in doc["outputs"]])
    slices = {str(k): (str(p), int(r)) for k, (p, r) in doc.get("slices", {}).items()}
    for name, (parent, _) in slices.items():
        if name not in tensors or parent not in tensors:
            raise ValueError(f"slice '{name}' of '{parent}' names an unknown tensor")
    return Program(graph=graph, calls=calls, slices=slices)
