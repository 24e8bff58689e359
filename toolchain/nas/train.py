"""Training a candidate (float, PyTorch) and the accuracy that counts: int8, from edgec's
golden executor on the model as `edgec compile` quantizes and lowers it."""
from __future__ import annotations

import math
import time

import numpy as np

from .measure import Compiled, compile_module


def train(module, x: np.ndarray, y: np.ndarray, epochs: int, seed: int,
          deadline: float | None = None, batch: int = 32, lr: float = 1e-2,
          augment: bool = True) -> dict:
    """AdamW, warm-up and cosine decay over `epochs`; stops early at `deadline`
    (time.monotonic()). Returns {"epochs", "seconds", "epoch_seconds", "loss"}."""
    if epochs <= 0:
        module.eval()
        return {"epochs": 0, "seconds": 0.0, "epoch_seconds": None, "loss": None}
    import torch
    from torch import nn

    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    # channels-last: PyTorch's CPU depthwise and 1x1 convolutions run about twice as fast
    module.to(memory_format=torch.channels_last)
    xt, yt = torch.from_numpy(np.array(x, np.float32)), torch.from_numpy(np.array(y))
    n = len(xt)
    steps = max(1, math.ceil(n / batch))
    opt = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=1e-4)
    total, warm = epochs * steps, max(1, epochs * steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(  # linear warm-up, then cosine to zero
        opt, lambda i: min(1.0, (i + 1) / warm) * 0.5 * (1 + math.cos(math.pi * i / total)))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.05)
    shift = max(1, x.shape[-1] // 8) if augment else 0
    module.train()
    t0 = time.monotonic()
    done, loss_sum = 0, float("nan")
    for _ in range(epochs):
        if deadline is not None and done > 0 and time.monotonic() >= deadline:
            break
        perm = torch.randperm(n, generator=g)
        loss_sum = 0.0
        for s in range(steps):
            idx = perm[s * batch:(s + 1) * batch]
            xb = _shift(xt[idx], shift, g) if shift else xt[idx]
            loss = loss_fn(module(xb.contiguous(memory_format=torch.channels_last)), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += float(loss.detach()) * len(idx)
        done += 1
    seconds = time.monotonic() - t0
    module.to(memory_format=torch.contiguous_format)
    module.eval()
    return {"epochs": done, "seconds": round(seconds, 2),
            "epoch_seconds": round(seconds / max(done, 1), 3),
            "loss": round(loss_sum / n, 4)}


def _shift(xb, shift: int, g):
    """Random translation by up to `shift` pixels (edge pixels repeated)."""
    import torch
    import torch.nn.functional as F
    pad = F.pad(xb, (shift, shift, shift, shift), mode="replicate")
    dy, dx = (int(v) for v in torch.randint(0, 2 * shift + 1, (2,), generator=g))
    h, w = xb.shape[-2:]
    return pad[..., dy:dy + h, dx:dx + w]


def float_accuracy(module, x: np.ndarray, y: np.ndarray) -> float:
    import torch
    module.eval()
    with torch.no_grad():
        logits = module(torch.from_numpy(np.array(x, np.float32)))
    return float((logits.argmax(1).numpy() == y).mean())


def int8_accuracy(compiled: Compiled, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of the int8 model in edgec's golden executor: inputs quantized as the
    compiled model's API says, class = argmax of the int8 outputs (first on ties)."""
    from ..check import golden_outputs, quantize_input, to_model_layout
    io = compiled.io
    spec = io["inputs"][0]
    xq = quantize_input(to_model_layout(np.asarray(x, np.float32), spec), spec)
    out = golden_outputs(compiled.program, io, xq).reshape(len(x), -1)
    return float((out.argmax(1) == y).mean())


def score(module, evals: dict, calib: np.ndarray, target, optimize: str) -> dict:
    """Compile the module (calibrated on `calib`) and score it on every (x, y) in evals:
    {"<name>_acc_int8", "<name>_acc_float", "arena"}."""
    compiled = compile_module(module, calib, target, optimize)
    out: dict = {"arena": int(compiled.plan.arena_bytes)}
    for name, (x, y) in evals.items():
        out[f"{name}_acc_int8"] = round(int8_accuracy(compiled, x, y), 5)
        out[f"{name}_acc_float"] = round(float_accuracy(module, x, y), 5)
    return out
