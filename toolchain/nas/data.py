"""The search's data: `.npz` files with `x` (N, C, H, W) float32 and `y` (N,) integer labels.

Inputs are resized to a candidate's resolution on the host (bilinear, antialiased when
shrinking): the network nas writes takes inputs at that resolution, and nas/calib.npy holds
samples at it.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import EdgecError


@dataclass(frozen=True)
class Dataset:
    x: np.ndarray  # (N, C, H, W) float32
    y: np.ndarray  # (N,) int64

    @property
    def num_classes(self) -> int:
        return int(self.y.max()) + 1

    def subset(self, index: np.ndarray) -> Dataset:
        return Dataset(self.x[index], self.y[index])


def load_npz(path: Path, what: str) -> Dataset:
    """Read and check one data file; every problem is one EdgecError line naming the file."""
    path = Path(path)
    if not path.is_file():
        raise EdgecError(f"{what} data file '{path}' not found")
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as e:
        raise EdgecError(f"'{path}' is not a readable .npz file ({type(e).__name__}); write it "
                         f"with numpy.savez(path, x=x, y=y)") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise EdgecError(f"'{path}' holds one array; expected an .npz with 'x' (N, C, H, W) "
                         f"and 'y' (N,): numpy.savez(path, x=x, y=y)")
    try:
        with z:
            keys = set(z.files)
            if not {"x", "y"} <= keys:
                raise EdgecError(f"'{path}' must hold arrays 'x' (N, C, H, W) and 'y' (N,); "
                                 f"it has {sorted(keys) or 'none'}")
            x, y = z["x"], z["y"]
    except EdgecError:
        raise
    except Exception as e:
        raise EdgecError(f"'{path}' is not a readable .npz file ({type(e).__name__}); write it "
                         f"with numpy.savez(path, x=x, y=y)") from None
    if x.ndim != 4 or not np.issubdtype(x.dtype, np.number):
        raise EdgecError(f"'{path}': x must be numeric (N, C, H, W), got {x.dtype} "
                         f"{tuple(x.shape)}")
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise EdgecError(f"'{path}': y must be integer labels of shape (N,), got {y.dtype} "
                         f"{tuple(y.shape)}")
    if len(x) != len(y):
        raise EdgecError(f"'{path}': x has {len(x)} samples but y has {len(y)} labels")
    if len(x) < 2:
        raise EdgecError(f"'{path}': needs at least 2 samples, has {len(x)}")
    if y.min() < 0:
        raise EdgecError(f"'{path}': labels must be 0..K-1, found {int(y.min())}")
    if not np.all(np.isfinite(x)):
        raise EdgecError(f"'{path}': x holds NaN or infinite values")
    if x.shape[2] != x.shape[3]:
        raise EdgecError(f"'{path}': images must be square, got H x W = {x.shape[2]} x "
                         f"{x.shape[3]}")
    return Dataset(np.ascontiguousarray(x, np.float32), y.astype(np.int64))


def load_pair(train: Path, val: Path) -> tuple[Dataset, Dataset]:
    tr, va = load_npz(train, "training"), load_npz(val, "validation")
    if tr.x.shape[1:] != va.x.shape[1:]:
        raise EdgecError(f"'{train}' has samples {tuple(tr.x.shape[1:])} but '{val}' has "
                         f"{tuple(va.x.shape[1:])}; they must match")
    if va.num_classes > tr.num_classes:
        raise EdgecError(f"'{val}' has label {va.num_classes - 1}, never seen in '{train}' "
                         f"(labels 0..{tr.num_classes - 1})")
    return tr, va


@lru_cache(maxsize=4)
def cached_pair(train: str, val: str, mtimes: tuple) -> tuple[Dataset, Dataset]:
    """load_pair once per worker process (mtimes key out a file rewritten meanwhile)."""
    return load_pair(Path(train), Path(val))


def resize(x: np.ndarray, resolution: int) -> np.ndarray:
    """(N, C, H, W) -> (N, C, resolution, resolution), float32."""
    if x.shape[-1] == resolution:
        return x
    import torch
    import torch.nn.functional as F
    t = torch.from_numpy(np.array(x, np.float32))  # a copy: Ray hands out read-only arrays
    out = F.interpolate(t, size=(resolution, resolution), mode="bilinear",
                        align_corners=False, antialias=resolution < x.shape[-1])
    return out.numpy().astype(np.float32)


def split(ds: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """A stratified (fit, holdout) split: the holdout ranks candidates during the search, so
    the validation set is used once, for the final model."""
    rng = np.random.default_rng(seed)
    hold = []
    for k in np.unique(ds.y):
        idx = np.flatnonzero(ds.y == k)
        rng.shuffle(idx)
        hold += list(idx[:max(1, int(round(fraction * len(idx))))])
    mask = np.zeros(len(ds.y), bool)
    mask[hold] = True
    return ds.subset(np.flatnonzero(~mask)), ds.subset(np.flatnonzero(mask))
