"""The search space: what a candidate network is, how it is drawn and changed, how it becomes
a torch.nn.Module.

A candidate is a MobileNetV2 / MCUNet-style network:

    stem       conv k3 (stem_stride) -> BN -> ReLU6, `stem_width` channels
    stages     each stage has a fixed base width and stride (from the space) and 0..n blocks;
               block = inverted residual: 1x1 expand (x `expand`) -> depthwise k x k (the
               stage's stride on its first block) -> 1x1 project; a residual add where the
               block keeps the shape (stride 1, same channels)
    head       optional 1x1 conv to `head_width` channels, then global average pool and a
               fully connected classifier (logits)

The input is the data resized to `resolution` x `resolution`. Channel counts are the stage's
base width times `width_mult`, rounded to a multiple of 8 (as MobileNet does).

The space (which values each gene may take) comes from a YAML or JSON file (`load_space`) or
from `default_space(in_channels, size, num_classes)`; `--space vit` (or a file with
`family: vit`) searches vision transformers instead (vit_space.py). Example file:

    resolutions: [8, 12, 16]
    stem_widths: [8, 16, 24]
    stem_strides: [1]
    width_mults: [0.5, 0.75, 1.0]
    kernel_sizes: [3, 5, 7]
    expansions: [3, 4, 6]
    head_widths: [0, 64]
    stages:
      - {channels: 16, stride: 1, depths: [1, 2]}
      - {channels: 24, stride: 2, depths: [1, 2, 3]}
      - {channels: 40, stride: 2, depths: [0, 1, 2, 3]}
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from torch import nn

from ..errors import EdgecError

KERNEL_CHOICES = (3, 5, 7)
EXPANSION_CHOICES = (1, 2, 3, 4, 6)  # 1: depthwise-separable block (no expand conv)


@dataclass(frozen=True)
class StageSpec:
    channels: int  # base output channels (before width_mult)
    stride: int  # stride of the stage's first block
    depths: tuple[int, ...]  # allowed number of blocks


@dataclass(frozen=True)
class Space:
    in_channels: int
    num_classes: int
    resolutions: tuple[int, ...]
    stem_widths: tuple[int, ...]
    stem_strides: tuple[int, ...]
    width_mults: tuple[float, ...]
    kernel_sizes: tuple[int, ...]
    expansions: tuple[int, ...]
    head_widths: tuple[int, ...]
    stages: tuple[StageSpec, ...]

    # AdamW learning rates: from scratch, and continuing from short-trained weights
    train_lr: ClassVar[tuple[float, float]] = (1e-2, 3e-3)

    def describe(self) -> dict:
        d = asdict(self)
        d["stages"] = [asdict(s) for s in self.stages]
        return d

    # the interface the search uses, shared with vit_space.VitSpace
    def candidate(self, d: dict) -> Candidate:
        return Candidate.from_json(d)

    def sample(self, rng: random.Random) -> Candidate:
        return sample(self, rng)

    def smallest(self) -> Candidate:
        return smallest(self)

    def mutate(self, c: Candidate, rng: random.Random) -> Candidate:
        return mutate(c, self, rng)

    def crossover(self, a: Candidate, b: Candidate, rng: random.Random) -> Candidate:
        return crossover(a, b, rng)

    def build(self, c: Candidate) -> nn.Module:
        return build_module(c, self)


@dataclass(frozen=True)
class Block:
    kernel: int
    expand: int


@dataclass(frozen=True)
class Candidate:
    """One architecture. `stages[i]` holds the blocks of stage i (possibly none)."""

    resolution: int
    stem_width: int
    stem_stride: int
    width_mult: float
    head_width: int
    stages: tuple[tuple[Block, ...], ...]
    in_channels: int = 1
    num_classes: int = 10

    def to_json(self) -> dict:
        return {"resolution": self.resolution, "stem_width": self.stem_width,
                "stem_stride": self.stem_stride, "width_mult": self.width_mult,
                "head_width": self.head_width,
                "stages": [[[b.kernel, b.expand] for b in st] for st in self.stages],
                "in_channels": self.in_channels, "num_classes": self.num_classes}

    @classmethod
    def from_json(cls, d: dict) -> Candidate:
        return cls(resolution=int(d["resolution"]), stem_width=int(d["stem_width"]),
                   stem_stride=int(d["stem_stride"]), width_mult=float(d["width_mult"]),
                   head_width=int(d["head_width"]),
                   stages=tuple(tuple(Block(int(k), int(e)) for k, e in st)
                                for st in d["stages"]),
                   in_channels=int(d["in_channels"]), num_classes=int(d["num_classes"]))

    @property
    def key(self) -> str:
        """A stable 16-hex-digit hash of the architecture (same on every machine)."""
        text = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def short(self) -> str:
        """'r12 s16/1 w0.75 [k3e4,k5e6|k3e3] h64' for logs and the report."""
        stages = "|".join(",".join(f"k{b.kernel}e{b.expand}" for b in st) or "-"
                          for st in self.stages)
        return (f"r{self.resolution} s{self.stem_width}/{self.stem_stride} "
                f"w{self.width_mult:g} [{stages}] h{self.head_width}")

    def features(self) -> list[float]:
        return features(self)


# ---- the space file ------------------------------------------------------------------------

def default_space(in_channels: int, size: int, num_classes: int) -> Space:
    """A space sized for `size` x `size` inputs: resolutions 0.5x..2x of it (multiples of 4,
    at least 8); four stages 16/24/32/64 wide, strides 1/2/2/1."""
    resolutions = sorted({max(8, int(round(size * f / 4)) * 4) for f in (0.5, 0.75, 1, 1.5, 2)})
    return Space(
        in_channels=in_channels, num_classes=num_classes,
        resolutions=tuple(resolutions),
        stem_widths=(8, 16, 24),
        stem_strides=(1, 2) if size >= 32 else (1,),
        width_mults=(0.5, 0.75, 1.0),
        kernel_sizes=(3, 5, 7),
        expansions=(3, 4, 6),
        head_widths=(0, 64, 128),
        stages=(StageSpec(16, 1, (1, 2)), StageSpec(24, 2, (1, 2, 3)),
                StageSpec(32, 2, (1, 2, 3)), StageSpec(64, 1, (0, 1, 2))),
    )


BUILTIN_SPACES = ("cnn", "vit")
SPACE_SUFFIXES = (".yaml", ".yml", ".json")


def load_space(path: Path | str | None, in_channels: int, size: int, num_classes: int):
    """The space `--space` names: None or 'cnn' the default space, 'vit' the default ViT
    space, otherwise a .yaml/.yml/.json file (keys as in the module doc, or vit_space's with
    `family: vit`; a missing key takes the default value)."""
    from .vit_space import FAMILY, default_vit_space, vit_space_from_dict
    base = default_space(in_channels, size, num_classes)
    if path is None or str(path) == "cnn":
        return base
    if str(path) == FAMILY:
        return default_vit_space(in_channels, size, num_classes)
    path = Path(path)
    if not path.is_file():
        if path.suffix.lower() not in SPACE_SUFFIXES:
            raise EdgecError(f"unknown search space '{path}': give a built-in one "
                             f"({', '.join(BUILTIN_SPACES)}) or a .yaml/.json space file")
        raise EdgecError(f"search space file '{path}' not found")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise EdgecError(f"'{path}': reading YAML needs PyYAML (pip install "
                                 f"'edgec[nas]'), or write the space as JSON") from None
            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except EdgecError:
        raise
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise EdgecError(f"'{path}' is not a valid space file: {first}") from None
    if not isinstance(data, dict):
        raise EdgecError(f"'{path}': expected a mapping of space keys, got "
                         f"{type(data).__name__}")
    family = data.get("family", "cnn")
    if family == FAMILY:
        return vit_space_from_dict(data, default_vit_space(in_channels, size, num_classes),
                                   str(path))
    if family != "cnn":
        raise EdgecError(f"'{path}': unknown family {family!r}; choose "
                         f"{' or '.join(BUILTIN_SPACES)}")
    return _space_from_dict({k: v for k, v in data.items() if k != "family"}, base, str(path))


_INT_LISTS = {"resolutions": 4, "stem_widths": 1, "stem_strides": 1, "head_widths": 0}


def _space_from_dict(data: dict, base: Space, source: str) -> Space:
    known = {"resolutions", "stem_widths", "stem_strides", "width_mults", "kernel_sizes",
             "expansions", "head_widths", "stages"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise EdgecError(f"{source}: unknown key(s) {', '.join(unknown)}; known: "
                         f"{', '.join(sorted(known))}")

    def int_list(key: str, minimum: int, allowed: tuple | None = None) -> tuple[int, ...]:
        v = data.get(key, getattr(base, key))
        if (not isinstance(v, (list, tuple)) or not v
                or not all(isinstance(i, int) and not isinstance(i, bool) and i >= minimum
                           for i in v)):
            raise EdgecError(f"{source}: '{key}' must be a non-empty list of integers "
                             f">= {minimum}, got {v!r}")
        if allowed is not None and any(i not in allowed for i in v):
            raise EdgecError(f"{source}: '{key}' values must be among {list(allowed)}, "
                             f"got {v!r}")
        return tuple(sorted(set(v)))

    mults = data.get("width_mults", list(base.width_mults))
    if (not isinstance(mults, (list, tuple)) or not mults
            or not all(isinstance(m, (int, float)) and not isinstance(m, bool) and 0 < m <= 4
                       for m in mults)):
        raise EdgecError(f"{source}: 'width_mults' must be a non-empty list of numbers in "
                         f"(0, 4], got {mults!r}")
    stages_raw = data.get("stages")
    if stages_raw is None:
        stages = base.stages
    else:
        if not isinstance(stages_raw, list) or not stages_raw:
            raise EdgecError(f"{source}: 'stages' must be a non-empty list of "
                             f"{{channels, stride, depths}}")
        stages = []
        for i, s in enumerate(stages_raw):
            ok = (isinstance(s, dict) and set(s) <= {"channels", "stride", "depths"}
                  and isinstance(s.get("channels"), int) and s["channels"] >= 1
                  and s.get("stride", 1) in (1, 2)
                  and isinstance(s.get("depths"), list) and s["depths"]
                  and all(isinstance(d, int) and 0 <= d <= 8 for d in s["depths"]))
            if not ok:
                raise EdgecError(f"{source}: stages[{i}] must be {{channels: int >= 1, "
                                 f"stride: 1 or 2, depths: [ints 0..8]}}, got {s!r}")
            stages.append(StageSpec(int(s["channels"]), int(s.get("stride", 1)),
                                    tuple(sorted(set(s["depths"])))))
        stages = tuple(stages)
    if all(min(s.depths) == 0 for s in stages) and all(max(s.depths) == 0 for s in stages):
        raise EdgecError(f"{source}: every stage has depth 0; allow at least one block")
    return Space(
        in_channels=base.in_channels, num_classes=base.num_classes,
        resolutions=int_list("resolutions", 4),
        stem_widths=int_list("stem_widths", 1),
        stem_strides=int_list("stem_strides", 1, (1, 2)),
        width_mults=tuple(sorted({float(m) for m in mults})),
        kernel_sizes=int_list("kernel_sizes", 1, KERNEL_CHOICES),
        expansions=int_list("expansions", 1, EXPANSION_CHOICES),
        head_widths=int_list("head_widths", 0),
        stages=stages,
    )


# ---- drawing and changing candidates ------------------------------------------------------

def sample(space: Space, rng: random.Random) -> Candidate:
    return Candidate(
        resolution=rng.choice(space.resolutions),
        stem_width=rng.choice(space.stem_widths),
        stem_stride=rng.choice(space.stem_strides),
        width_mult=rng.choice(space.width_mults),
        head_width=rng.choice(space.head_widths),
        stages=tuple(tuple(_block(space, rng) for _ in range(rng.choice(s.depths)))
                     for s in space.stages),
        in_channels=space.in_channels, num_classes=space.num_classes)


def smallest(space: Space) -> Candidate:
    """The candidate with every size gene at its minimum: the least memory the space offers
    (activations grow with resolution, widths, expansion and depth)."""
    return Candidate(
        resolution=min(space.resolutions), stem_width=min(space.stem_widths),
        stem_stride=max(space.stem_strides), width_mult=min(space.width_mults),
        head_width=min(space.head_widths),
        stages=tuple(tuple(Block(min(space.kernel_sizes), min(space.expansions))
                           for _ in range(min(s.depths))) for s in space.stages),
        in_channels=space.in_channels, num_classes=space.num_classes)


def _block(space: Space, rng: random.Random) -> Block:
    return Block(rng.choice(space.kernel_sizes), rng.choice(space.expansions))


def _other(values: tuple, current, rng: random.Random):
    """A different value from `values` when there is one."""
    rest = [v for v in values if v != current]
    return rng.choice(rest) if rest else current


def mutate(c: Candidate, space: Space, rng: random.Random) -> Candidate:
    """One random change: a global gene, a stage's depth, or one block's kernel/expansion."""
    genes = []
    for name, values in (("resolution", space.resolutions), ("stem_width", space.stem_widths),
                         ("stem_stride", space.stem_strides),
                         ("width_mult", space.width_mults), ("head_width", space.head_widths)):
        if len(values) > 1:
            genes.append(("global", name, values))
    for i, s in enumerate(space.stages):
        if len(s.depths) > 1:
            genes.append(("depth", i, s.depths))
        for j in range(len(c.stages[i])):
            genes.append(("block", (i, j), None))
    if not genes:
        return c
    kind, what, values = rng.choice(genes)
    if kind == "global":
        return _replace(c, **{what: _other(values, getattr(c, what), rng)})
    stages = [list(st) for st in c.stages]
    if kind == "depth":
        depth = _other(values, len(stages[what]), rng)
        while len(stages[what]) > depth:
            stages[what].pop()
        while len(stages[what]) < depth:  # a new block copies its neighbour, or is drawn
            stages[what].append(stages[what][-1] if stages[what] else _block(space, rng))
    else:
        i, j = what
        b = stages[i][j]
        if rng.random() < 0.5 and len(space.kernel_sizes) > 1:
            stages[i][j] = Block(_other(space.kernel_sizes, b.kernel, rng), b.expand)
        else:
            stages[i][j] = Block(b.kernel, _other(space.expansions, b.expand, rng))
    return _replace(c, stages=tuple(tuple(st) for st in stages))


def crossover(a: Candidate, b: Candidate, rng: random.Random) -> Candidate:
    """Uniform crossover: each global gene and each whole stage from either parent."""
    pick = lambda x, y: x if rng.random() < 0.5 else y  # noqa: E731
    return Candidate(
        resolution=pick(a.resolution, b.resolution), stem_width=pick(a.stem_width, b.stem_width),
        stem_stride=pick(a.stem_stride, b.stem_stride),
        width_mult=pick(a.width_mult, b.width_mult), head_width=pick(a.head_width, b.head_width),
        stages=tuple(pick(sa, sb) for sa, sb in zip(a.stages, b.stages)),
        in_channels=a.in_channels, num_classes=a.num_classes)


def _replace(c: Candidate, **changes: Any) -> Candidate:
    d = {"resolution": c.resolution, "stem_width": c.stem_width, "stem_stride": c.stem_stride,
         "width_mult": c.width_mult, "head_width": c.head_width, "stages": c.stages,
         "in_channels": c.in_channels, "num_classes": c.num_classes}
    d.update(changes)
    return Candidate(**d)


def features(c: Candidate) -> list[float]:
    """Architecture features for the accuracy predictor (fixed length for a given space)."""
    blocks = [b for st in c.stages for b in st]
    per_stage = []
    for st in c.stages:
        per_stage += [len(st), sum(b.kernel for b in st) / max(len(st), 1),
                      sum(b.expand for b in st) / max(len(st), 1)]
    return [c.resolution, c.stem_width, c.stem_stride, c.width_mult, c.head_width,
            len(blocks), sum(b.kernel for b in blocks) / max(len(blocks), 1),
            sum(b.expand for b in blocks) / max(len(blocks), 1), *per_stage]


# ---- candidate -> torch module -------------------------------------------------------------

def channels(base: int, width_mult: float) -> int:
    """base x width_mult rounded to a multiple of 8 (never below 8, never 10% below)."""
    v = base * width_mult
    out = max(8, int(v + 4) // 8 * 8)
    return out + 8 if out < 0.9 * v else out


def build_module(c: Candidate, space: Space) -> nn.Module:
    """The candidate as a torch.nn.Module (train mode, PyTorch's default initialization).
    Takes (N, in_channels, resolution, resolution) and returns (N, num_classes) logits."""
    if len(c.stages) != len(space.stages):
        raise EdgecError(f"candidate has {len(c.stages)} stages, the space {len(space.stages)}")
    return CandidateNet(c, space)


def _conv_bn(c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1) -> list:
    return [nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False),
            nn.BatchNorm2d(c_out)]


class InvertedResidual(nn.Module):
    """1x1 expand (skipped at expand 1) -> depthwise k x k -> 1x1 project (linear), + x when
    the shape is kept."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int):
        super().__init__()
        hidden = c_in * expand
        layers: list = []
        if expand != 1:
            layers += [*_conv_bn(c_in, hidden, 1), nn.ReLU6()]
        layers += [*_conv_bn(hidden, hidden, kernel, stride, groups=hidden), nn.ReLU6(),
                   *_conv_bn(hidden, c_out, 1)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y


class CandidateNet(nn.Module):
    def __init__(self, c: Candidate, space: Space):
        super().__init__()
        layers: list = [*_conv_bn(c.in_channels, c.stem_width, 3, c.stem_stride), nn.ReLU6()]
        width = c.stem_width
        for spec, blocks in zip(space.stages, c.stages):
            out = channels(spec.channels, c.width_mult)
            for j, b in enumerate(blocks):
                layers.append(InvertedResidual(width, out, b.kernel,
                                               spec.stride if j == 0 else 1, b.expand))
                width = out
        if c.head_width:
            layers += [*_conv_bn(width, c.head_width, 1), nn.ReLU6()]
            width = c.head_width
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(width, c.num_classes)

    def forward(self, x):
        return self.classifier(self.features(x))


def space_from_json(d: dict):
    """The space of describe() (a worker's copy)."""
    from .vit_space import FAMILY, VitSpace
    if d.get("family") == FAMILY:
        return VitSpace(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})
    return Space(**{**d, **{k: tuple(v) for k, v in d.items() if isinstance(v, list)
                            and k != "stages"},
                    "width_mults": tuple(float(m) for m in d["width_mults"]),
                    "stages": tuple(StageSpec(s["channels"], s["stride"], tuple(s["depths"]))
                                    for s in d["stages"])})
