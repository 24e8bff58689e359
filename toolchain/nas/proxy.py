"""A training-free score: NASWOT (Mellor et al., "Neural Architecture Search without
Training", ICML 2021).

One forward pass of the untrained network on a batch; each sample gets a binary code: which
ReLU/ReLU6 units are active (GELU units too, in the ViT space: positive output). K[i, j] =
number of units where samples i and j agree. A network that separates its inputs well at
initialization has codes far apart, a K close to diagonal, and a large log |det K|: the
score. Higher is better; it correlates with accuracy after training (the search reports how
well, as a rank correlation on the candidates it trained).
"""
from __future__ import annotations

import numpy as np


def naswot(module, x: np.ndarray, seed: int = 0) -> float:
    """log|det K| of the module (fresh initialization) on samples x (N, C, H, W)."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    codes: list[torch.Tensor] = []

    def hook(_m, _inp, out):
        codes.append((out.detach().flatten(1) > 0).to(torch.float64))

    handles = [m.register_forward_hook(hook) for m in module.modules()
               if isinstance(m, (nn.ReLU, nn.ReLU6, nn.GELU))]
    try:
        module.train()  # batch statistics: at initialization the running ones are the identity
        with torch.no_grad():
            module(torch.from_numpy(np.array(x, np.float32)))
    finally:
        for h in handles:
            h.remove()
    if not codes:
        return 0.0
    c = torch.cat(codes, dim=1)
    k = c @ c.T + (1 - c) @ (1 - c).T
    sign, logdet = torch.linalg.slogdet(k)
    return float(logdet) if float(sign) > 0 else float("-inf")
