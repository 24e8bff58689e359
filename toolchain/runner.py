"""`edgec run`: a compiled model on the emulator, with the user's arrays in the source layout."""
from __future__ import annotations

import io
import json
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import check, emulator, target as targets
from .build import build_firmware
from .errors import EdgecError


@dataclass
class RunOutput:
    y: np.ndarray  # the first (for most models the only) output
    instructions: list[int]
    layer_instructions: list[list[int]] | None
    outputs: dict[str, np.ndarray] = field(default_factory=dict)  # every output, by name


def load_compiled(out_dir: Path) -> dict:
    meta = Path(out_dir) / "model.json"
    if not meta.is_file():
        raise EdgecError(f"'{out_dir}' is not an edgec output directory (no model.json); "
                         f"create one with 'edgec compile'")
    return json.loads(meta.read_text())


def batch_input(x: np.ndarray, spec: dict) -> tuple[np.ndarray, bool]:
    """User array -> (N, *model NHWC shape without batch) in the model's input dtype (int8,
    or float32 for a model with float I/O), and whether the user gave floats."""
    sample = tuple(spec["source_shape"][1:])
    if tuple(x.shape) == tuple(spec["source_shape"]) or tuple(x.shape[1:]) == sample:
        batch = x
    elif tuple(x.shape) == sample:
        batch = x[None]
    else:
        raise EdgecError(f"input '{spec['name']}': shape {tuple(x.shape)} does not match the "
                         f"model input {tuple(spec['source_shape'])}: give "
                         f"(N, {', '.join(map(str, sample))})")
    if check.is_float(spec):
        if not np.issubdtype(batch.dtype, np.floating):
            raise EdgecError(f"the model's input '{spec['name']}' is float32 (it quantizes it "
                             f"itself); give float values, got {batch.dtype}")
        return check.to_model_layout(batch, spec).astype(np.float32), True
    if np.issubdtype(batch.dtype, np.floating):
        return check.quantize_input(check.to_model_layout(batch, spec), spec), True
    if batch.dtype == np.dtype(spec["dtype"]):
        return check.to_model_layout(batch, spec), False
    raise EdgecError(f"input '{spec['name']}' dtype {batch.dtype} not accepted: give float32 "
                     f"(quantized with the model's input scale) or {spec['dtype']}")


def named_inputs(x: np.ndarray | dict[str, np.ndarray], specs: list[dict],
                 where: str = "the inputs") -> list[np.ndarray]:
    """The user's arrays in the model's input order: one array for a single-input model,
    or a dict keyed by the model's input names (an .npz); a one-line EdgecError naming the
    tensor for a missing or extra key."""
    def want(s: dict) -> str:
        return f"'{s['name']}' (N, {', '.join(map(str, s['source_shape'][1:]))})"
    if not isinstance(x, dict):
        if len(specs) != 1:
            raise EdgecError(f"the model has {len(specs)} inputs: give an .npz with one array "
                             f"per input, keyed {', '.join(want(s) for s in specs)}")
        return [np.asarray(x)]
    names = [s["name"] for s in specs]
    if len(specs) == 1 and names[0] not in x and ("x" in x or len(x) == 1):
        # a single input under the samples' usual key, or the file's only array
        return [np.asarray(x["x"] if "x" in x else next(iter(x.values())))]
    for s in specs:
        if s["name"] not in x:
            raise EdgecError(f"{where} have no array '{s['name']}': the model's input "
                             f"{want(s)}; keys given: {', '.join(sorted(x)) or 'none'}")
    extra = sorted(k for k in x if k not in names)
    if extra:
        raise EdgecError(f"{where} have an array '{extra[0]}' that is no model input; the "
                         f"inputs are {', '.join(want(s) for s in specs)}")
    return [np.asarray(x[n]) for n in names]


def batch_inputs(x: np.ndarray | dict[str, np.ndarray], specs: list[dict],
                 where: str = "the inputs") -> tuple[list[np.ndarray], bool]:
    """batch_input for every model input; they must hold the same number of samples."""
    batches, floats = [], []
    for arr, spec in zip(named_inputs(x, specs, where), specs):
        q, was_float = batch_input(arr, spec)
        batches.append(q)
        floats.append(was_float)
    if len({len(b) for b in batches}) > 1:
        sizes = ", ".join(f"'{s['name']}' {len(b)}" for s, b in zip(specs, batches))
        raise EdgecError(f"the inputs have different numbers of samples ({sizes}); give the "
                         f"same N for each")
    return batches, all(floats)


def run_compiled(out_dir: Path, x: np.ndarray | dict[str, np.ndarray], profile: bool = False,
                 timeout_s: float = 600.0) -> RunOutput:
    """x: one array for a single-input model, or a dict of arrays keyed by input name."""
    out_dir = Path(out_dir)
    meta = load_compiled(out_dir)
    specs_in, specs_out = meta["io"]["inputs"], meta["io"]["outputs"]
    target = targets.load_compiled_target(out_dir, meta)
    batches, was_float = batch_inputs(x, specs_in)
    with tempfile.TemporaryDirectory(prefix="edgec-run-") as tmp:
        elf = out_dir / "firmware.elf"
        if profile:  # the per-layer hook is compiled in only on request: rebuild aside
            elf = build_firmware(out_dir / "src", target, Path(tmp), profile=True).elf
        elif not elf.is_file():
            raise EdgecError(f"'{out_dir}' has no firmware.elf (compiled with --no-build?); "
                             f"run 'edgec compile' without --no-build")
        res = emulator.run_firmware(elf, target, check.pack_inputs(batches),
                                    sum(s["bytes"] for s in specs_out),
                                    timeout_s=timeout_s, profile=profile)
    outputs = {}
    for y, spec in zip(check.unpack_outputs(res.outputs, specs_out), specs_out):
        y = check.to_source_layout(y, spec)
        if was_float and not check.is_float(spec):
            y = check.dequantize(y, spec)
        outputs[spec["name"]] = y
    return RunOutput(next(iter(outputs.values())), res.instructions, res.layer_instructions,
                     outputs)


def load_npy_npz(path: str | Path, what: str,
                 hint: str = "") -> np.ndarray | dict[str, np.ndarray]:
    """An .npy (one array) or an .npz (its arrays by name, in order) of numbers, never
    unpickled; a one-line EdgecError for anything else."""
    path = Path(path)
    if not path.is_file():
        raise EdgecError(f"{what} file '{path}' not found")
    try:
        data = np.load(path, allow_pickle=False)
        if isinstance(data, np.lib.npyio.NpzFile):
            with data:
                arrays = {k: data[k] for k in data.files}
        else:
            arrays = data
    except Exception as e:
        raise EdgecError(f"'{path}' is not a readable .npz/.npy file ({type(e).__name__})"
                         f"{hint}") from None
    if isinstance(arrays, dict) and not arrays:
        raise EdgecError(f"'{path}' holds no arrays")
    for k, a in (arrays.items() if isinstance(arrays, dict) else [("", arrays)]):
        if a.dtype.kind not in "biuf":
            raise EdgecError(f"'{path}'{f' array {k!r}' if k else ''} holds {a.dtype} data; "
                             f"expected numbers")
    return arrays


def read_arrays(path: Path) -> np.ndarray | dict[str, np.ndarray]:
    """`edgec run --input`: an .npy (one array), or an .npz (its arrays by name, in order)."""
    arrays = load_npy_npz(path, "input")
    for k, a in (arrays.items() if isinstance(arrays, dict) else [("", arrays)]):
        if a.ndim < 1 or a.shape[0] == 0:
            raise EdgecError(f"'{path}'{f' array {k!r}' if k else ''}: expected a non-empty "
                             f"batch of samples, got shape {a.shape}")
    return arrays


def check_output_path(path: Path, meta: dict) -> None:
    """Before running: an .npy holds one output only."""
    specs = meta["io"]["outputs"]
    if Path(path).suffix.lower() != ".npz" and len(specs) > 1:
        raise EdgecError(f"the model has {len(specs)} outputs "
                         f"({', '.join(s['name'] for s in specs)}): write them to an .npz "
                         f"(--output {Path(path).with_suffix('.npz')})")


def save_outputs(path: Path, res: RunOutput) -> Path:
    """An .npz of every output keyed by tensor name, in the model's order; else an .npy of
    the only output."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() != ".npz":
        np.save(path, res.y)
        return path if path.suffix == ".npy" else path.with_name(path.name + ".npy")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, arr in res.outputs.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            z.writestr(f"{name}.npy", buf.getvalue())
    return path
