"""`edgec run`: a compiled model on the emulator, with the user's arrays in the source layout."""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import check, emulator, target as targets
from .build import build_firmware
from .errors import EdgecError


@dataclass
class RunOutput:
    y: np.ndarray
    instructions: list[int]
    layer_instructions: list[list[int]] | None


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
        raise EdgecError(f"input shape {tuple(x.shape)} does not match the model input "
                         f"{tuple(spec['source_shape'])}: give (N, {', '.join(map(str, sample))})")
    if check.is_float(spec):
        if not np.issubdtype(batch.dtype, np.floating):
            raise EdgecError(f"the model's input is float32 (it quantizes it itself); give "
                             f"float values, got {batch.dtype}")
        return check.to_model_layout(batch, spec).astype(np.float32), True
    if np.issubdtype(batch.dtype, np.floating):
        return check.quantize_input(check.to_model_layout(batch, spec), spec), True
    if batch.dtype == np.int8:
        return check.to_model_layout(batch, spec), False
    raise EdgecError(f"input dtype {batch.dtype} not accepted: give float32 (quantized with the "
                     f"model's input scale) or int8")


def run_compiled(out_dir: Path, x: np.ndarray, profile: bool = False,
                 timeout_s: float = 600.0) -> RunOutput:
    out_dir = Path(out_dir)
    meta = load_compiled(out_dir)
    spec_in, spec_out = meta["io"]["inputs"][0], meta["io"]["outputs"][0]
    target = targets.load_compiled_target(out_dir, meta)
    q, was_float = batch_input(x, spec_in)
    with tempfile.TemporaryDirectory(prefix="edgec-run-") as tmp:
        elf = out_dir / "firmware.elf"
        if profile:  # the per-layer hook is compiled in only on request: rebuild aside
            elf = build_firmware(out_dir / "src", target, Path(tmp), profile=True).elf
        elif not elf.is_file():
            raise EdgecError(f"'{out_dir}' has no firmware.elf (compiled with --no-build?); "
                             f"run 'edgec compile' without --no-build")
        res = emulator.run_firmware(elf, target, check.to_bytes(q), spec_out["bytes"],
                                    timeout_s=timeout_s, profile=profile)
    y = check.from_bytes(res.outputs, spec_out).reshape(len(q), *spec_out["shape"][1:])
    y = check.to_source_layout(y, spec_out)
    if was_float and not check.is_float(spec_out):
        y = check.dequantize(y, spec_out)
    return RunOutput(y, res.instructions, res.layer_instructions)
