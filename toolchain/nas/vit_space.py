"""The ViT search space (`edgec nas --space vit`): a timm-style vision transformer, the shape
edgec's pipeline fuses (attention row by row, the MLP in token blocks), so the arena a
candidate is measured at is the one `edgec compile` plans for it.

    patch embed   conv `patch` x `patch`, stride `patch`, to `width` channels:
                  (resolution / patch)^2 tokens, plus a [cls] token, plus a learned position
                  embedding
    blocks        `depth` x (LayerNorm -> multi-head self-attention with `heads` heads (one
                  qkv projection) -> + x; LayerNorm -> MLP width x `mlp_ratio`, GELU -> + x)
    head          LayerNorm, fully connected classifier on the [cls] token

Rules every candidate keeps: `heads` divides `width`; `patch` divides `resolution` into at
least 2 x 2 patches. The input is the data resized to `resolution` x `resolution`.

A space file selects this space with `family: vit`; a missing key takes the default value:

    family: vit
    resolutions: [16, 32]
    patches: [4, 8]
    widths: [32, 64]
    depths: [1, 2, 3]
    heads: [2, 4]
    mlp_ratios: [1, 2, 4]
"""
from __future__ import annotations

import hashlib
import json
import math
import random
from dataclasses import asdict, dataclass, replace
from typing import ClassVar

import torch
from torch import nn

from ..errors import EdgecError

FAMILY = "vit"
KEYS = ("resolutions", "patches", "widths", "depths", "heads", "mlp_ratios")


@dataclass(frozen=True)
class VitCandidate:
    resolution: int
    patch: int
    width: int
    depth: int
    heads: int
    mlp_ratio: int
    in_channels: int = 1
    num_classes: int = 10

    @property
    def tokens(self) -> int:
        """Patch tokens plus the [cls] token."""
        return (self.resolution // self.patch) ** 2 + 1

    def to_json(self) -> dict:
        return {"family": FAMILY, **asdict(self)}

    @classmethod
    def from_json(cls, d: dict) -> VitCandidate:
        if d.get("family") != FAMILY:
            raise KeyError("family")
        return cls(**{k: int(d[k]) for k in ("resolution", "patch", "width", "depth", "heads",
                                             "mlp_ratio", "in_channels", "num_classes")})

    @property
    def key(self) -> str:
        """A stable 16-hex-digit hash of the architecture (same on every machine)."""
        text = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def short(self) -> str:
        """'vit r16 p4 w32 d2 h2 m2' for logs and the report."""
        return (f"vit r{self.resolution} p{self.patch} w{self.width} d{self.depth} "
                f"h{self.heads} m{self.mlp_ratio}")

    def features(self) -> list[float]:
        """For the accuracy predictor."""
        return [self.resolution, self.patch, math.log(self.tokens), self.width, self.depth,
                self.heads, self.width // self.heads, self.mlp_ratio]


@dataclass(frozen=True)
class VitSpace:
    in_channels: int
    num_classes: int
    resolutions: tuple[int, ...]
    patches: tuple[int, ...]
    widths: tuple[int, ...]
    depths: tuple[int, ...]
    heads: tuple[int, ...]
    mlp_ratios: tuple[int, ...]
    family: str = FAMILY

    # AdamW learning rates (from scratch, and continuing from short-trained weights):
    # transformers want a smaller one than the CNN space's
    train_lr: ClassVar[tuple[float, float]] = (5e-3, 2e-3)

    def describe(self) -> dict:
        return asdict(self)

    def patches_for(self, resolution: int) -> tuple[int, ...]:
        return tuple(p for p in self.patches if resolution % p == 0 and resolution // p >= 2)

    def heads_for(self, width: int) -> tuple[int, ...]:
        return tuple(h for h in self.heads if width % h == 0)

    def candidate(self, d: dict) -> VitCandidate:
        return VitCandidate.from_json(d)

    def sample(self, rng: random.Random) -> VitCandidate:
        resolution, width = rng.choice(self.resolutions), rng.choice(self.widths)
        return VitCandidate(
            resolution=resolution, patch=rng.choice(self.patches_for(resolution)),
            width=width, depth=rng.choice(self.depths),
            heads=rng.choice(self.heads_for(width)), mlp_ratio=rng.choice(self.mlp_ratios),
            in_channels=self.in_channels, num_classes=self.num_classes)

    def smallest(self) -> VitCandidate:
        """Fewest tokens (then the lowest resolution), every other size gene at its minimum:
        the least memory the space offers."""
        resolution, patch = min(((r, p) for r in self.resolutions for p in self.patches_for(r)),
                                key=lambda rp: ((rp[0] // rp[1]) ** 2, rp[0], -rp[1]))
        width = min(self.widths)
        return VitCandidate(resolution, patch, width, min(self.depths),
                            min(self.heads_for(width)), min(self.mlp_ratios),
                            self.in_channels, self.num_classes)

    def mutate(self, c: VitCandidate, rng: random.Random) -> VitCandidate:
        """One gene changed; a patch or head count the change broke is repaired."""
        genes = [(name, values) for name, values in (
            ("resolution", self.resolutions), ("patch", self.patches_for(c.resolution)),
            ("width", self.widths), ("depth", self.depths), ("heads", self.heads_for(c.width)),
            ("mlp_ratio", self.mlp_ratios)) if len(values) > 1]
        if not genes:
            return c
        name, values = rng.choice(genes)
        rest = [v for v in values if v != getattr(c, name)]
        return self.repair(replace(c, **{name: rng.choice(rest)}))

    def crossover(self, a: VitCandidate, b: VitCandidate, rng: random.Random) -> VitCandidate:
        """Uniform crossover of the genes, then repaired."""
        genes = {k: (getattr(a, k) if rng.random() < 0.5 else getattr(b, k))
                 for k in ("resolution", "patch", "width", "depth", "heads", "mlp_ratio")}
        return self.repair(replace(a, **genes))

    def repair(self, c: VitCandidate) -> VitCandidate:
        """The nearest allowed patch for the resolution, head count for the width (in log
        scale; ties go to the smaller)."""
        def nearest(v: int, allowed: tuple[int, ...]) -> int:
            return v if v in allowed else min(allowed, key=lambda a: (abs(math.log(a / v)), a))
        return replace(c, patch=nearest(c.patch, self.patches_for(c.resolution)),
                       heads=nearest(c.heads, self.heads_for(c.width)))

    def check(self, c: VitCandidate) -> None:
        """A candidate from outside the search (a file) must keep the space's rules."""
        if c.patch not in self.patches_for(c.resolution) or c.width % c.heads:
            raise EdgecError(f"ViT candidate {c.short()} breaks the rules: the patch must "
                             f"divide the resolution (2 x 2 patches at least) and the heads "
                             f"the width")

    def build(self, c: VitCandidate) -> nn.Module:
        """The candidate as a torch.nn.Module (train mode): (N, in_channels, resolution,
        resolution) -> (N, num_classes) logits."""
        self.check(c)
        return VitNet(c)


def default_vit_space(in_channels: int, size: int, num_classes: int) -> VitSpace:
    """A space for `size` x `size` inputs: resolutions 0.5x..2x of it (multiples of 8, so
    that patches of 2, 4 and 8 divide them), patches 2..8 for small images, 4..16 from 32
    pixels up."""
    resolutions = sorted({max(8, int(round(size * f / 8)) * 8) for f in (0.5, 1, 1.5, 2)})
    return VitSpace(in_channels=in_channels, num_classes=num_classes,
                    resolutions=tuple(resolutions),
                    patches=(2, 4, 8) if size < 32 else (4, 8, 16),
                    widths=(16, 32, 48, 64, 96, 128), depths=(1, 2, 3, 4, 6),
                    heads=(2, 4), mlp_ratios=(1, 2, 4))


def vit_space_from_dict(data: dict, base: VitSpace, source: str) -> VitSpace:
    """A space file's keys over the default space, checked (one line per problem)."""
    unknown = sorted(set(data) - set(KEYS) - {"family"})
    if unknown:
        raise EdgecError(f"{source}: unknown key(s) {', '.join(unknown)} for the vit space; "
                         f"known: family, {', '.join(KEYS)}")
    values = {}
    for key in KEYS:
        v = data.get(key, getattr(base, key))
        if (not isinstance(v, (list, tuple)) or not v
                or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 1
                           for i in v)):
            raise EdgecError(f"{source}: '{key}' must be a non-empty list of integers >= 1, "
                             f"got {v!r}")
        values[key] = tuple(sorted(set(v)))
    if min(values["heads"]) < 2:
        raise EdgecError(f"{source}: 'heads' values must be >= 2 (edgec's ONNX import does "
                         f"not take single-head attention yet), got {list(values['heads'])}")
    space = VitSpace(in_channels=base.in_channels, num_classes=base.num_classes, **values)
    for r in space.resolutions:
        if not space.patches_for(r):
            raise EdgecError(f"{source}: no patch size in {list(space.patches)} divides "
                             f"resolution {r} into 2 x 2 patches or more; add one or drop "
                             f"that resolution")
    for w in space.widths:
        if not space.heads_for(w):
            raise EdgecError(f"{source}: no head count in {list(space.heads)} divides width "
                             f"{w}; add one or drop that width")
    return space


# ---- candidate -> torch module -------------------------------------------------------------

class Attention(nn.Module):
    """One qkv projection, heads split by reshape / permute, scaled dot product, softmax:
    the pattern lower/attention.py fuses."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads, self.d = heads, dim // heads
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        # unpacked along the first axis (an ONNX Split, as the frontend expects; tracing
        # warns that the count is fixed: it is, at 3)
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, self.d).permute(2, 0, 3, 1, 4)
        y = ((q @ k.transpose(-2, -1)) * self.d ** -0.5).softmax(dim=-1) @ v
        return self.proj(y.transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, ratio: int):
        super().__init__()
        self.n1, self.n2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.mlp = nn.Sequential(nn.Linear(dim, ratio * dim), nn.GELU(),
                                 nn.Linear(ratio * dim, dim))

    def forward(self, x):
        x = x + self.attn(self.n1(x))
        return x + self.mlp(self.n2(x))


class VitNet(nn.Module):
    def __init__(self, c: VitCandidate):
        super().__init__()
        self.embed = nn.Conv2d(c.in_channels, c.width, c.patch, c.patch)
        self.cls = nn.Parameter(torch.randn(1, 1, c.width) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, c.tokens, c.width) * 0.02)
        self.blocks = nn.Sequential(*[Block(c.width, c.heads, c.mlp_ratio)
                                      for _ in range(c.depth)])
        self.norm, self.head = nn.LayerNorm(c.width), nn.Linear(c.width, c.num_classes)

    def forward(self, x):
        x = self.embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        return self.head(self.norm(self.blocks(x))[:, 0])
