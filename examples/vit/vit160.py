"""A ViT for a 320 KB MCU (issue 9): 160x160x3 input, 8x8 patches (400 tokens + [cls]),
width 128, 4 heads, MLP ratio 4, depth 4 (~0.86 M parameters), trained briefly on generated
stripe images, exported to ONNX.

    python examples/vit/vit160.py OUT_DIR [--epochs 8] [--train 384]

writes OUT_DIR/vit160.onnx, OUT_DIR/calib.npy (calibration samples) and OUT_DIR/test.npy
(held-out samples), NCHW float32. benchmarks/vit_bench.py compiles and measures it.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

# the blocks `edgec nas --space vit` builds: one ViT family for the example and the search
from edgec.toolchain.nas.vit_space import Block
from torch import nn

IMAGE, PATCH, WIDTH, HEADS, RATIO, DEPTH = 160, 8, 128, 4, 4, 4
CLASSES = 4  # stripes: horizontal, vertical, diagonal, anti-diagonal


class ViT(nn.Module):
    def __init__(self, image=IMAGE, patch=PATCH, dim=WIDTH, heads=HEADS, ratio=RATIO,
                 depth=DEPTH, classes=CLASSES):
        super().__init__()
        tokens = (image // patch) ** 2 + 1
        self.embed = nn.Conv2d(3, dim, patch, patch)
        self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, tokens, dim) * 0.02)
        self.blocks = nn.Sequential(*[Block(dim, heads, ratio) for _ in range(depth)])
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, classes)

    def forward(self, x):
        x = self.embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        return self.head(self.norm(self.blocks(x))[:, 0])


def stripes(n: int, seed: int, image: int = IMAGE) -> tuple[np.ndarray, np.ndarray]:
    """n noisy images [n, 3, image, image] in [-1, 1] of stripes in one of 4 directions,
    random period, phase and colours; labels [n]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:image, 0:image].astype(np.float32)
    labels = rng.integers(0, CLASSES, n)
    out = np.empty((n, 3, image, image), np.float32)
    for i, c in enumerate(labels):
        coord = (yy, xx, xx + yy, xx - yy)[c]
        wave = np.sin(2 * np.pi * coord / rng.uniform(6, 24) + rng.uniform(0, 2 * np.pi))
        colours = rng.uniform(-1, 1, (2, 3, 1, 1)).astype(np.float32)
        mix = (wave > 0).astype(np.float32)
        img = colours[0] * mix + colours[1] * (1 - mix)
        out[i] = np.clip(img + rng.normal(0, 0.2, img.shape), -1, 1)
    return out, labels


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, batch: int = 32,
          seed: int = 0) -> list[float]:
    """A short AdamW training; returns the loss of each epoch."""
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    losses = []
    model.train()
    for _ in range(epochs):
        order, total = torch.randperm(len(xt)), 0.0
        for s in range(0, len(xt), batch):
            idx = order[s:s + batch]
            loss = F.cross_entropy(model(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / len(xt))
    return losses


def build(out_dir: Path, epochs: int = 8, n_train: int = 384, seed: int = 0) -> dict:
    """Train, export and write the samples; returns a summary."""
    torch.manual_seed(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = ViT()
    x, y = stripes(n_train, seed)
    losses = train(model, x, y, epochs, seed=seed)
    model.eval()
    xtest, ytest = stripes(64, seed + 1)
    with torch.no_grad():
        acc = float((model(torch.from_numpy(xtest)).argmax(1).numpy() == ytest).mean())
    torch.onnx.export(model, (torch.from_numpy(x[:1]),), str(out_dir / "vit160.onnx"),
                      input_names=["image"], output_names=["logits"], opset_version=17,
                      dynamo=False)
    np.save(out_dir / "calib.npy", x[:64])
    np.save(out_dir / "test.npy", xtest[:16])
    params = sum(p.numel() for p in model.parameters())
    return {"parameters": params, "losses": losses, "test_accuracy": acc}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--train", type=int, default=384)
    args = ap.parse_args()
    print(build(args.out_dir, args.epochs, args.train))


if __name__ == "__main__":
    main()
