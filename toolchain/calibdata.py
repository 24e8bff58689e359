"""Calibration samples: the user's file, or generated data with a warning that says so."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import EdgecError
from .options import CompileOptions


def read_samples(path: Path) -> np.ndarray:
    """An .npy with a leading sample axis, or an .npz whose `x` (or only) array is that."""
    path = Path(path)
    if not path.is_file():
        raise EdgecError(f"calibration file '{path}' not found")
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as e:
        raise EdgecError(f"'{path}' is not a readable .npy/.npz file ({type(e).__name__})") \
            from None
    if isinstance(data, np.lib.npyio.NpzFile):
        keys = list(data.keys())
        if "x" in keys:
            key = "x"
        elif len(keys) == 1:
            key = keys[0]
        else:
            raise EdgecError(f"'{path}' holds arrays {keys}; name the samples 'x'")
        data = data[key]
    if data.ndim < 1 or data.shape[0] == 0:
        raise EdgecError(f"'{path}' has no samples (shape {data.shape})")
    if not np.issubdtype(data.dtype, np.number):
        raise EdgecError(f"'{path}' holds {data.dtype} data; expected numbers")
    return data


def load_or_generate(opts: CompileOptions, source) -> tuple[np.ndarray, dict]:
    """Samples shaped (N, *input without batch) in the source layout, float32."""
    want = tuple(source.input_shape[1:])
    if opts.calib is None:
        rng = np.random.default_rng(opts.seed)
        samples = rng.standard_normal((opts.calib_samples, *want)).astype(np.float32)
        msg = (f"no --calib given: calibrated on {opts.calib_samples} generated standard-normal "
               f"samples; accuracy on real data may suffer")
        opts.warnings.append(msg)
        return samples, {"source": "generated", "samples": opts.calib_samples,
                         "distribution": "standard normal", "seed": opts.seed}
    samples = read_samples(opts.calib)
    if tuple(samples.shape[1:]) != want:
        raise EdgecError(
            f"calibration data '{opts.calib}' has sample shape {tuple(samples.shape[1:])} but "
            f"the model input is {tuple(source.input_shape)} (expected (N, {', '.join(map(str, want))}))")
    return samples.astype(np.float32), {"source": str(opts.calib), "samples": int(len(samples))}


def load_optional(opts: CompileOptions, source) -> tuple[np.ndarray | None, dict]:
    """A pre-quantized model needs no calibration; --calib, if given, adds real test inputs."""
    info = {"source": "none: the model is already int8 (its quantization is kept)"}
    if opts.calib is None:
        return None, info
    if len(source.graph.inputs) > 1:
        raise EdgecError(f"--calib gives one input's samples but the model has "
                         f"{len(source.graph.inputs)} inputs; leave it out (the check uses "
                         f"uniform int8 inputs) and test real data with 'edgec test'")
    samples = read_samples(opts.calib)
    want = tuple(source.input_shape[1:])
    if tuple(samples.shape[1:]) != want:
        raise EdgecError(
            f"sample data '{opts.calib}' has sample shape {tuple(samples.shape[1:])} but the "
            f"model input is {tuple(source.input_shape)}")
    return samples, {**info, "test_inputs": str(opts.calib)}
