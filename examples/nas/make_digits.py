"""Digits for `edgec nas`: scikit-learn's 8x8 grayscale handwritten digits (1,797 images, shipped
inside scikit-learn: nothing is downloaded), split 80/20 stratified into train.npz / val.npz
with x (N, 1, 8, 8) float32 scaled to [-1, 1] and y (N,) int64 labels 0..9.

    python examples/nas/make_digits.py --out build/digits
    edgec nas --target stm32f746 --data build/digits/train.npz --val build/digits/val.npz \\
        --budget-sram 64KB --budget-flash 256KB --time 10m -o build/digits/nas
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def digits(seed: int = 0, val_fraction: float = 0.2):
    """(x_train, y_train, x_val, y_val); the split is stratified and fixed by the seed."""
    from sklearn.datasets import load_digits
    d = load_digits()
    x = (d.images.astype(np.float32) / 8.0 - 1.0)[:, None]  # pixel values 0..16 -> [-1, 1]
    y = d.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    val = np.zeros(len(y), bool)
    for k in range(10):
        idx = np.flatnonzero(y == k)
        val[rng.permutation(idx)[:int(round(val_fraction * len(idx)))]] = True
    return x[~val], y[~val], x[val], y[val]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    xt, yt, xv, yv = digits(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    np.savez(args.out / "train.npz", x=xt, y=yt)
    np.savez(args.out / "val.npz", x=xv, y=yv)
    print(f"wrote {args.out}/train.npz {xt.shape} and val.npz {xv.shape}")


if __name__ == "__main__":
    main()
