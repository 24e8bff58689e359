"""The shipped example: a small MobileNetV2-style CNN for 3x32x32 images, saved as TorchScript,
with calibration and test inputs generated here (nothing is downloaded).

    python examples/cnn/make_model.py --out build/demo
    edgec compile build/demo/model.pt --target stm32f746 --calib build/demo/calib.npy -o build/demo/net
    edgec run build/demo/net --input build/demo/x.npy --output build/demo/y.npy
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from torch import nn


def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout)]


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1x1 expand, depthwise 3x3, 1x1 project; residual when shapes allow."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        self.use_residual = stride == 1 and cin == cout
        self.body = nn.Sequential(
            *conv_bn(cin, mid, 1), nn.ReLU6(),
            *conv_bn(mid, mid, 3, stride, groups=mid), nn.ReLU6(),
            *conv_bn(mid, cout, 1))

    def forward(self, x):
        y = self.body(x)
        return x + y if self.use_residual else y


class TinyMobileNet(nn.Module):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            *conv_bn(3, 16, 3, 2), nn.ReLU6(),           # 16x16
            InvertedResidual(16, 16, 1, 2),
            InvertedResidual(16, 24, 2, 4),              # 8x8
            InvertedResidual(24, 24, 1, 4),
            InvertedResidual(24, 32, 2, 4),              # 4x4
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(32, num_classes)

    def forward(self, x):
        return torch.softmax(self.classifier(self.features(x)), dim=-1)


def images(n: int, seed: int) -> np.ndarray:
    """Smooth colour blobs plus noise, roughly like normalized photos (mean 0, std ~1)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:32, 0:32] / 31.0
    out = np.empty((n, 3, 32, 32), np.float32)
    for i in range(n):
        cy, cx, r = rng.uniform(0.2, 0.8, 3)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (0.05 + 0.2 * r))
        for c in range(3):
            out[i, c] = rng.normal(0, 1) * blob + rng.normal(0, 0.3, (32, 32))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    model = TinyMobileNet().eval()
    for m in model.modules():  # non-trivial BatchNorm statistics, so folding is exercised
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    args.out.mkdir(parents=True, exist_ok=True)
    calib = images(64, args.seed + 1)
    with torch.no_grad():
        traced = torch.jit.trace(model, torch.from_numpy(calib[:1]))
    torch.jit.save(traced, str(args.out / "model.pt"))
    np.save(args.out / "calib.npy", calib)
    np.save(args.out / "x.npy", images(4, args.seed + 2))
    print(f"wrote {args.out}/model.pt (TorchScript), calib.npy {calib.shape}, x.npy (4, 3, 32, 32)")


if __name__ == "__main__":
    main()
