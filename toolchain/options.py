"""Options that travel down the pipeline: the CLI fills them, nothing reads the environment."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class CompileOptions:
    model: Path
    target: str  # a shipped target name or a path to a board .toml
    out_dir: Path
    calib: Path | None = None  # .npy (leading sample axis) or .npz
    input_shape: tuple[int, ...] | None = None  # source layout, batch included
    trust_pickle: bool = False
    io: str = "model"  # int8 .tflite / QDQ .onnx: "model" keeps its I/O types, "int8" drops a
    #                    boundary (de)quantize
    build: bool = True  # False: stop after emitting C (--no-build)
    run: bool = True  # False: stop after building the firmware (--no-run)
    check_samples: int = 8  # emulator inputs compared with the golden model
    calib_samples: int = 64  # generated calibration samples when no --calib
    seed: int = 0
    profile: bool = False
    optimize: str = "speed"  # "speed" | "size": kernel variants (lower/select.py), -O2 | -Os
    precision: str = "auto"  # "auto": int16 where measured fidelity needs it | "int8"
    fidelity_goal: float = 0.99  # the precision search's goal (cosine vs the float model)
    patch: str = "auto"  # "auto" | "min" | "off" | "N@layer": striped first layers (plan/patch.py)
    warnings: list[str] = field(default_factory=list)
