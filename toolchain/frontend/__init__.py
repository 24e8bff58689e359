"""Frontends: a trained model file -> the NHWC IR (toolchain/ir.py).

ONNX is the hub: PyTorch models are exported to ONNX first (frontend/torch.py), so every
source goes through the one importer in frontend/onnx.py and keeps the ONNX model around
for calibration and the QDQ artifact.
"""
from .onnx import load_onnx

__all__ = ["load_onnx", "load_torch"]


def load_torch(path, input_shape=None, trust_pickle=False):
    """PyTorch file -> float ONNX ModelProto (see frontend/torch.py); torch is imported lazily."""
    from .torch import load_torch as _load_torch

    return _load_torch(path, input_shape, trust_pickle)
