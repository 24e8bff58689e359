"""Shared fixtures: compiled example models, built once per test session (they are slow)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/models.py, tests/kernel_cases.py
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # shared_data
from shared_data import candidate_dirs  # noqa: E402




def shared_models_dir() -> Path:
    """The shared .tflite models (benchmarks/shared_data.py says where it looks). Missing
    models FAIL the tests that need them: never a silent skip."""
    candidates = candidate_dirs()
    for c in candidates:
        if c.is_dir() and any(c.glob("*.tflite")):
            return c
    pytest.fail("shared .tflite models not found; looked in "
                + ", ".join(str(c) for c in candidates)
                + " (set EDGEC_SHARED_MODELS to the folder holding them)")


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def calib_like(shape: tuple[int, ...], n: int, seed: int) -> np.ndarray:
    """The calibration distribution the end-to-end tests use (standard normal)."""
    return np.random.default_rng(seed).standard_normal((n, *shape[1:])).astype(np.float32)


def edgec(*args: str) -> int:
    """Run the CLI in-process (torch is imported once per worker, not per call)."""
    from edgec.toolchain.cli import main
    return main([str(a) for a in args])
