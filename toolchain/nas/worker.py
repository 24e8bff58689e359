"""The work the search hands out, as plain functions of (task kind, payload): what an executor
runs in a worker process, in a Ray task, or inline. Every task is deterministic given its
payload and the context, and returns a JSON-ready dict ({"error": ...} for a candidate edgec
cannot compile, so one bad candidate never stops the search).

    measure  candidate -> {"measure": Measurement, "proxy": NASWOT score}
    train    candidate, epochs -> int8 (and float) accuracy on the holdout after training
             from scratch on the fit split, and the weights (state dict as NumPy arrays)
    final    candidate, epochs, seconds, init weights -> more training from them; holdout and
             validation accuracy, and the weights
"""
from __future__ import annotations

import hashlib
import time
import traceback
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import EdgecError
from .data import Dataset, resize, split

CALIB_SAMPLES = 64  # samples that calibrate a trained model (and nas/calib.npy)
MEASURE_SAMPLES = 8  # samples that calibrate a candidate for measuring (sizes only)
PROXY_BATCH = 64


@dataclass(frozen=True, eq=False)  # hashed by identity: the caches below key on it
class Context:
    """Everything a task needs besides its payload; sent once per worker."""

    ident: str  # tells two contexts apart (a Ray worker may see several searches)
    train: Dataset
    val: Dataset
    space: dict  # Space.describe()
    target: str  # name or path, as the user gave it
    optimize: str
    cache_dir: str | None
    seed: int
    holdout: float  # fraction of the training data that ranks candidates


_CTX: Context | None = None


def init(ctx: Context, threads: int | None = 1, ignore_sigint: bool = False) -> None:
    """Set this process's context (an executor's worker initializer)."""
    global _CTX
    _CTX = ctx
    if threads:
        import torch
        torch.set_num_threads(threads)
    if ignore_sigint:  # the main process handles Ctrl-C and stops the workers itself
        import signal
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def activate(ctx: Context) -> None:
    """Make ctx this process's context unless an equal one is already (a Ray task brings
    its context along with every call)."""
    if _CTX is None or _CTX.ident != ctx.ident:
        init(ctx)


def run(kind: str, payload: dict) -> dict:
    """One task in this process's context."""
    if _CTX is None:
        raise RuntimeError("worker.init(ctx) was not called in this process")
    return run_in(_CTX, kind, payload)


def run_in(ctx: Context, kind: str, payload: dict) -> dict:
    t0 = time.monotonic()
    try:
        fn = {"measure": _measure, "train": _train, "final": _final}[kind]
        out = fn(ctx, payload)
    except EdgecError as e:
        out = {"error": str(e)}
    except Exception as e:  # a candidate that breaks edgec: recorded, not fatal
        last = traceback.format_exc().strip().splitlines()[-1]
        out = {"error": f"{type(e).__name__}: {e} ({last})"}
    out["task_seconds"] = round(time.monotonic() - t0, 3)
    return out


# ---- helpers (cached per process) ----------------------------------------------------------

@lru_cache(maxsize=2)
def _space(ctx: Context):
    from .space import space_from_json
    return space_from_json(ctx.space)


@lru_cache(maxsize=2)
def _target(name: str):
    from ..target import load_target
    return load_target(name)


@lru_cache(maxsize=2)
def _splits(ctx: Context) -> tuple[Dataset, Dataset]:
    return split(ctx.train, ctx.holdout, ctx.seed)


@lru_cache(maxsize=16)
def _resized(ctx: Context, which: str, resolution: int) -> np.ndarray:
    fit, hold = _splits(ctx)
    x = {"fit": fit.x, "hold": hold.x, "train": ctx.train.x, "val": ctx.val.x}[which]
    return resize(x, resolution)


def task_seed(seed: int, key: str, what: str) -> int:
    return int(hashlib.sha256(f"{seed}:{key}:{what}".encode()).hexdigest()[:8], 16)


def calib_samples(ctx: Context, resolution: int, n: int = CALIB_SAMPLES) -> np.ndarray:
    """The first n training samples of a fixed shuffle, at the resolution (nas/calib.npy)."""
    order = np.random.default_rng(ctx.seed).permutation(len(ctx.train.y))[:n]
    return _resized(ctx, "train", resolution)[np.sort(order)]


def _candidate(ctx: Context, payload: dict):
    return _space(ctx).candidate(payload["candidate"])


# ---- tasks ---------------------------------------------------------------------------------

def _measure(ctx: Context, payload: dict) -> dict:
    import torch
    from .measure import measure
    from .proxy import naswot
    c = _candidate(ctx, payload)
    space = _space(ctx)
    x = _resized(ctx, "fit", c.resolution)
    m = measure(c, space, x[:MEASURE_SAMPLES], _target(ctx.target), ctx.optimize,
                Path(ctx.cache_dir) if ctx.cache_dir else None,
                seed=task_seed(ctx.seed, c.key, "init"))
    seed = task_seed(ctx.seed, c.key, "proxy")
    batch = np.random.default_rng(seed).permutation(len(x))[:PROXY_BATCH]
    torch.manual_seed(seed)
    score = naswot(space.build(c), x[np.sort(batch)], seed)
    return {"measure": m.to_json(), "proxy": round(score, 4) if np.isfinite(score) else None}


def _train(ctx: Context, payload: dict) -> dict:
    """Short training from scratch on the fit split; int8 accuracy on the holdout. Returns
    the weights too: a finalist's longer training starts from them."""
    import torch
    from .train import score, train
    c = _candidate(ctx, payload)
    fit, hold = _splits(ctx)
    seed = task_seed(ctx.seed, c.key, f"train{payload['epochs']}")
    torch.manual_seed(seed)
    space = _space(ctx)
    module = space.build(c)
    seconds = payload.get("seconds")
    info = train(module, _resized(ctx, "fit", c.resolution), fit.y, int(payload["epochs"]), seed,
                 None if seconds is None else time.monotonic() + float(seconds),
                 lr=space.train_lr[0])
    out = score(module, {"holdout": (_resized(ctx, "hold", c.resolution), hold.y)},
                calib_samples(ctx, c.resolution), _target(ctx.target), ctx.optimize)
    return {"train": info, **out, "state_dict": _state(module)}


def _final(ctx: Context, payload: dict) -> dict:
    """More training from the short-trained weights (`init`, when given) at half the
    learning rate, until `epochs` or `seconds`; then int8 accuracy on holdout (which picks
    the winner among finalists) and validation (reported, deciding nothing). If the holdout
    got worse than `init_holdout`, the initial weights are kept (and scored)."""
    import torch
    from .train import score, train
    c = _candidate(ctx, payload)
    fit, hold = _splits(ctx)
    seed = task_seed(ctx.seed, c.key, "final")
    torch.manual_seed(seed)
    space = _space(ctx)
    module = space.build(c)
    init = payload.get("init")
    if init is not None:
        module.load_state_dict(_tensors(init))
    seconds = payload.get("seconds")
    deadline = None if seconds is None else time.monotonic() + float(seconds)
    info = train(module, _resized(ctx, "fit", c.resolution), fit.y, int(payload["epochs"]),
                 seed, deadline, lr=space.train_lr[1 if init is not None else 0])
    evals = {"holdout": (_resized(ctx, "hold", c.resolution), hold.y),
             "val": (_resized(ctx, "val", c.resolution), ctx.val.y)}
    calib = calib_samples(ctx, c.resolution)
    out = score(module, evals, calib, _target(ctx.target), ctx.optimize)
    kept = "final"
    if init is not None and info["epochs"] and \
            out["holdout_acc_int8"] < payload.get("init_holdout", -1.0):
        module.load_state_dict(_tensors(init))
        out = score(module, evals, calib, _target(ctx.target), ctx.optimize)
        kept = "short"
    return {"train": info, **out, "weights_from": kept, "state_dict": _state(module)}


def _state(module) -> dict:
    return {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}


def _tensors(state: dict) -> dict:
    import torch
    return {k: torch.from_numpy(np.array(v)) for k, v in state.items()}
