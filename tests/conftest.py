"""Shared fixtures: compiled example models, built once per test session (they are slow)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))  # tests/models.py, tests/kernel_cases.py


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
