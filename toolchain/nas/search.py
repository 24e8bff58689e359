"""`edgec nas`: search a network that fits the board's budgets, measured by edgec itself.

    run_nas(NasOptions(...)) -> summary dict (also nas/summary.json)

1. The smallest network of the space is measured first: if even it misses a budget, stop
   with its figures (no budget below them can be met).
2. Aging evolution (Real et al. 2019, "regularized evolution") in generations: children come
   from tournament winners of the population by mutation or crossover; every child is
   measured (arena, flash, MACs through edgec's compiler; the NASWOT proxy); a child over a
   budget is recorded and never trained nor bred from. Each generation short-trains a few
   of the untrained candidates that fit: the ones the predictor (gradient-boosted trees
   fitted on what was trained so far) ranks highest, or before it has enough data, the
   proxy. Short training is on 80 % of the training data; the int8 accuracy on the other
   20 % (the holdout), from edgec's golden executor, is the fitness. The oldest member
   leaves the population when a new one joins. A training only starts when its expected
   time (from its MACs and the trainings timed so far) fits the time left.
3. After `search_fraction` of the time, the best few trained candidates train longer (in
   parallel, from their short-trained weights, as long as the time allows); the holdout
   picks the winner, whose int8 validation accuracy is reported (the validation data
   decides nothing). It is saved as best.pt (TorchScript) with calib.npy, measured again
   from those files as `edgec compile` will, and, with `verify`, compiled, linked and run
   on the emulator.

Deterministic given the seed: the candidates, their order and every number are the same on
any executor with any number of workers (tasks are seeded from the candidate, results are
taken in submission order, generation sizes are fixed); the time limit only decides where
the sequence stops.

Everything finished is in candidates.jsonl, rewritten after every batch; Ctrl-C stops the
workers and keeps it, and --resume continues from it.
"""
from __future__ import annotations

import hashlib
import json
import math
import random
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import EdgecError
from . import worker
from .data import load_pair, split
from .executor import InlineExecutor, make_executor
from .measure import write_atomic
from .predictor import Predictor, cross_validated_rank, feature_row, spearman
from .space import Candidate, Space, load_space

CANDIDATES_FILE = "candidates.jsonl"
DEFAULT_RATE = 3e-9  # training seconds per MAC-sample before any training was timed
DEFAULT_OVERHEAD = 10.0  # seconds to compile and score after training, before any was timed
RESERVE = 10.0  # seconds kept at the end for saving and re-measuring best.pt
RESERVE_VERIFY = 30.0  # ... and for building and emulating it (~12 s on a loaded 2-core box)
STATE_FILE = "state.json"
SUMMARY_FILE = "summary.json"


@dataclass
class NasOptions:
    train: Path
    val: Path
    out_dir: Path
    target: str = "stm32f746"
    budget_sram: int | None = None  # bytes; None: the board's SRAM
    budget_flash: int | None = None  # bytes; None: the board's flash
    time_limit: float = 600.0  # seconds, the whole run
    space_file: Path | str | None = None  # "cnn" (or None), "vit", or a space file
    seed: int = 0
    resume: bool = False
    executor: str = "local"  # local | ray | inline
    workers: int | None = None  # None: one per CPU
    ray_address: str | None = None
    optimize: str = "speed"  # as `edgec compile --optimize`: kernel choice changes the sizes
    max_candidates: int | None = None  # stop the search after measuring this many in all
    population: int = 16
    tournament: int = 4
    crossover: float = 0.25  # share of children bred by crossover (the rest by mutation)
    generation: int = 8  # candidates measured per generation
    train_per_generation: int = 2
    short_epochs: int = 5
    final_epochs: int = 60
    finalists: int = 2
    search_fraction: float = 0.7  # of time_limit; the rest trains the finalists
    holdout: float = 0.2
    verify: bool = True  # compile, link and run the winner with `edgec compile`
    progress: bool = True


class NasInterrupted(EdgecError):
    """Ctrl-C: what was finished is saved (the message says where)."""

    exit_code = 130


# ---- the record of every candidate ---------------------------------------------------------

class State:
    """Every candidate seen, in order, as the JSON records of candidates.jsonl."""

    def __init__(self, out_dir: Path, budgets: dict, space: Space):
        self.out_dir = out_dir
        self.budgets = budgets
        self.space = space
        self.records: dict[str, dict] = {}

    @property
    def path(self) -> Path:
        return self.out_dir / CANDIDATES_FILE

    def load(self) -> None:
        if not self.path.is_file():
            raise EdgecError(f"--resume: '{self.path}' not found; run without --resume first")
        for n, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                self.space.candidate(rec["arch"])
            except (ValueError, KeyError, TypeError):
                raise EdgecError(f"--resume: '{self.path}' line {n} is not a candidate record; "
                                 f"remove the file to start over") from None
            rec["final"] = None  # finalists are trained again at the end of this run
            self.records[rec["key"]] = rec
            self.refit(rec)

    def save(self) -> None:
        text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in self.records.values())
        write_atomic(self.path, text)

    def refit(self, rec: dict) -> None:
        """Recompute fits/over against this run's budgets (a resumed run may change them)."""
        m = rec.get("measure")
        over = []
        if m is not None:
            if m["sram"] > self.budgets["sram"]:
                over.append("sram")
            if m["flash"] > self.budgets["flash"]:
                over.append("flash")
        rec["over"] = over
        rec["fits"] = m is not None and not over and not rec.get("error")

    def add(self, c: Candidate, origin: str, generation: int, result: dict) -> dict:
        rec = {"id": len(self.records), "key": c.key, "generation": generation,
               "origin": origin, "arch": c.to_json(), "short": c.short(),
               "measure": result.get("measure"), "proxy": result.get("proxy"),
               "error": result.get("error"), "predicted": None, "trained": None,
               "final": None}
        self.refit(rec)
        self.records[c.key] = rec
        return rec

    def trained(self) -> list[dict]:
        return [r for r in self.records.values()
                if r["trained"] is not None and "holdout_acc_int8" in r["trained"]]

    def candidate(self, key: str) -> Candidate:
        return self.space.candidate(self.records[key]["arch"])


def accuracy(rec: dict) -> float:
    return rec["trained"]["holdout_acc_int8"]


def _value(v) -> float:
    return -math.inf if v is None else v


# ---- the run -------------------------------------------------------------------------------

def run_nas(opts: NasOptions) -> dict:
    t_start = time.monotonic()
    from ..target import load_target
    target = load_target(opts.target)
    budgets = {"sram": min(opts.budget_sram or target.sram_bytes, target.sram_bytes),
               "flash": min(opts.budget_flash or target.flash_bytes, target.flash_bytes)}
    warnings = []
    for what, given, board in (("SRAM", opts.budget_sram, target.sram_bytes),
                               ("flash", opts.budget_flash, target.flash_bytes)):
        if given and given > board:
            warnings.append(f"{what} budget {given} B is more than {target.name} has; "
                            f"using {board} B")
    train, val = load_pair(opts.train, opts.val)
    space = load_space(opts.space_file, train.x.shape[1], train.x.shape[2], train.num_classes)
    out = Path(opts.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = State(out, budgets, space)
    run_id = _run_identity(opts, target, space, train, val)
    if opts.resume:
        _check_resumable(out, run_id)
        state.load()
    ctx = worker.Context(ident=hashlib.sha256(json.dumps(run_id, sort_keys=True).encode())
                         .hexdigest()[:16], train=train, val=val, space=space.describe(),
                         target=opts.target, optimize=opts.optimize,
                         cache_dir=str(out / "cache"), seed=opts.seed, holdout=opts.holdout)
    progress = Progress(opts.time_limit, opts.progress)
    search = Search(opts, space, state, ctx, progress, t_start)
    search.check_smallest()  # budgets nobody can meet: an error before anything is written
    write_atomic(out / STATE_FILE, json.dumps(run_id, indent=2, sort_keys=True) + "\n")
    state.save()
    ex = None
    try:
        ex = make_executor(opts.executor, ctx, opts.workers, opts.ray_address)
        search.executor = ex
        search.loop()
        progress.note("training finalists")
        final = search.final()
        ex.shutdown()
        ex = None
        summary = finish(opts, search, final, target, budgets, warnings, t_start)
    except KeyboardInterrupt:
        if ex is not None:
            ex.shutdown(kill=True)
            ex = None
        state.save()
        progress.close()
        _write_partial_report(opts, search, budgets, target, warnings, t_start)
        raise NasInterrupted(f"interrupted: {len(state.records)} candidates saved in "
                             f"{state.path}; continue with --resume") from None
    finally:
        if ex is not None:
            ex.shutdown(kill=True)
        progress.close()
    return summary


def _run_identity(opts: NasOptions, target, space: Space, train, val) -> dict:
    """What a resumed run must share with the first one (budgets and time may change)."""
    def digest(ds) -> str:
        h = hashlib.sha256(np.ascontiguousarray(ds.x).tobytes())
        h.update(np.ascontiguousarray(ds.y).tobytes())
        return h.hexdigest()[:16]
    ident = {"target": target.name, "optimize": opts.optimize, "seed": opts.seed,
             "holdout": opts.holdout, "space": space.describe(), "train": digest(train),
             "val": digest(val)}
    return json.loads(json.dumps(ident))  # as it reads back from state.json


def _check_resumable(out: Path, run_id: dict) -> None:
    path = out / STATE_FILE
    if not path.is_file():
        raise EdgecError(f"--resume: '{path}' not found; run without --resume first")
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        raise EdgecError(f"--resume: '{path}' is damaged; remove '{out}' to start over") \
            from None
    changed = [k for k in run_id if old.get(k) != run_id[k]]
    if changed:
        raise EdgecError(f"--resume: the search in '{out}' had another "
                         f"{', '.join(changed)}; resume with the same ones, or start over "
                         f"without --resume")


class Search:
    def __init__(self, opts: NasOptions, space: Space, state: State, ctx: worker.Context,
                 progress: Progress, t_start: float):
        self.opts, self.space, self.state, self.ctx = opts, space, state, ctx
        self.progress, self.t_start = progress, t_start
        self.executor = None
        self.rng = random.Random(f"{opts.seed}:{len(state.records)}")
        self.predictor = Predictor(opts.seed)
        self.population: deque[str] = deque(
            [k for k, r in state.records.items() if r["fits"]][-opts.population:])
        self.generation = 1 + max((r["generation"] for r in state.records.values()), default=0)
        self.search_seconds = 0.0
        self.online: list[tuple[float, float]] = []  # (predicted when chosen, measured)
        self.n_fit = len(split(ctx.train, ctx.holdout, ctx.seed)[0].y)
        self.weights_dir = state.out_dir / "cache" / "weights"
        self._refit()

    # -- budgets nobody can meet
    def check_smallest(self) -> None:
        c = self.space.smallest()
        rec = self.state.records.get(c.key)
        if rec is None:
            result = next(InlineExecutor(self.ctx).map("measure", [{"candidate": c.to_json()}]))
            rec = self.state.add(c, "smallest", 0, result)
        if rec["error"]:
            raise EdgecError(f"the smallest network of the search space does not compile: "
                             f"{rec['error']}")
        if not rec["fits"]:
            m, b = rec["measure"], self.state.budgets
            raise EdgecError(
                f"no network of the search space fits the budgets (SRAM {b['sram']} B, flash "
                f"{b['flash']} B): the smallest ({c.short()}) needs arena {m['arena']} B, "
                f"SRAM {m['sram']} B in all (with stack and I/O buffers) and flash "
                f"{m['flash']} B; raise the budgets or shrink the space (--space)")

    # -- evolution
    def loop(self) -> None:
        opts = self.opts
        per_gen, to_train = opts.generation, opts.train_per_generation
        t0 = time.monotonic()
        while time.monotonic() < (search_end := self.search_end()):
            left = None if opts.max_candidates is None else opts.max_candidates - len(
                self.state.records)
            if left is not None and left <= 0:
                break
            children = self.propose(per_gen if left is None else min(per_gen, left))
            if not children:
                break  # the space is exhausted
            payloads = [{"candidate": c.to_json()} for c, _ in children]
            for (c, origin), res in zip(children, self.executor.map("measure", payloads)):
                rec = self.state.add(c, origin, self.generation, res)
                if rec["fits"]:
                    self.population.append(c.key)
                    while len(self.population) > opts.population:
                        self.population.popleft()
                self.progress.update(self)
            self.state.save()
            if opts.short_epochs > 0 and time.monotonic() < search_end:
                self.train_some(to_train, search_end)
            self.generation += 1
        self.search_seconds = time.monotonic() - t0

    def search_end(self) -> float:
        """When the search stops: at search_fraction of the time, or earlier if the rest
        would not leave the finalists time to be scored and saved (short time limits)."""
        opts = self.opts
        reserve = RESERVE_VERIFY if opts.verify else RESERVE
        _, overhead = self.timing()
        return self.t_start + min(opts.search_fraction * opts.time_limit,
                                  opts.time_limit - reserve - 2.5 * overhead)

    def propose(self, n: int) -> list[tuple[Candidate, str]]:
        out: list[tuple[Candidate, str]] = []
        keys = set(self.state.records)
        for _ in range(50 * n):
            if len(out) == n:
                break
            if len(self.population) < self.opts.population:
                c, origin = self.space.sample(self.rng), "random"
            elif self.rng.random() < self.opts.crossover:
                c = self.space.crossover(self.tournament(), self.tournament(), self.rng)
                if self.rng.random() < 0.5:
                    c = self.space.mutate(c, self.rng)
                origin = "crossover"
            else:
                c, origin = self.space.mutate(self.tournament(), self.rng), "mutation"
            if c.key in keys:
                continue
            keys.add(c.key)
            out.append((c, origin))
        return out

    def tournament(self) -> Candidate:
        pop = list(self.population)
        picks = self.rng.sample(pop, min(self.opts.tournament, len(pop)))
        best = max(picks, key=lambda k: (self.fitness(k), -picks.index(k)))
        return self.state.candidate(best)

    def fitness(self, key: str) -> float:
        rec = self.state.records[key]
        if self.predictor.ready:
            if rec["trained"] is not None and "holdout_acc_int8" in rec["trained"]:
                return accuracy(rec)
            if rec["predicted"] is not None:
                return rec["predicted"]
        return rec["proxy"] if rec["proxy"] is not None else -math.inf

    def train_some(self, n: int, search_end: float) -> None:
        """Short-train up to n untrained candidates that fit the budgets and can finish
        before search_end: the predictor's best, or before it has data, alternately the
        best proxy among the cheaper half (by MACs) and overall (diverse first data)."""
        pool = [r for r in self.state.records.values() if r["fits"] and r["trained"] is None]
        if not pool:
            return
        if self.predictor.ready:
            order = sorted(pool, key=lambda r: (-_value(r["predicted"]), r["id"]))
        else:
            by_proxy = sorted(pool, key=lambda r: (-_value(r["proxy"]), r["id"]))
            median = float(np.median([r["measure"]["macs"] for r in pool]))
            cheap = [r for r in by_proxy if r["measure"]["macs"] <= median]
            order, seen = [], set()
            for pair in zip(cheap, by_proxy):
                for r in pair:
                    if r["key"] not in seen:
                        seen.add(r["key"])
                        order.append(r)
            order += [r for r in by_proxy if r["key"] not in seen]
        left = search_end - time.monotonic()
        chosen = [r for r in order
                  if self.train_seconds(r, self.opts.short_epochs) <= left][:n]
        if not chosen:
            return
        # a load spike must not run the search past its end: training stops there
        seconds = max(1.0, search_end - time.monotonic())
        payloads = [{"candidate": r["arch"], "epochs": self.opts.short_epochs,
                     "seconds": seconds} for r in chosen]
        for rec, res in zip(chosen, self.executor.map("train", payloads)):
            state = res.pop("state_dict", None)
            if state is not None:
                self.weights_dir.mkdir(parents=True, exist_ok=True)
                np.savez(self.weights_dir / f"{rec['key']}.npz", **state)
            rec["trained"] = res if "error" not in res else {"error": res["error"]}
            if self.predictor.ready and rec["predicted"] is not None and "error" not in res:
                self.online.append((rec["predicted"], res["holdout_acc_int8"]))
            self.progress.update(self)
        self.state.save()
        self._refit()

    def timing(self) -> tuple[float, float]:
        """(training seconds per MAC-sample, seconds to compile and score after training):
        medians over the trainings so far (defaults before any)."""
        done = [r for r in self.state.trained() if r["trained"]["train"].get("epoch_seconds")]
        if not done:
            return DEFAULT_RATE, DEFAULT_OVERHEAD
        rate = np.median([r["trained"]["train"]["epoch_seconds"]
                          / (r["measure"]["macs"] * self.n_fit) for r in done])
        overhead = np.median([r["trained"]["task_seconds"] - r["trained"]["train"]["seconds"]
                              for r in done])
        return float(rate), float(overhead)

    def train_seconds(self, rec: dict, epochs: int, evals: int = 1) -> float:
        """Expected wall time of a training task: epochs x rate x MACs x samples, plus
        compiling and scoring `evals` data sets (see timing)."""
        rate, overhead = self.timing()
        epoch = max(0.2, rate * rec["measure"]["macs"] * self.n_fit)
        return epochs * epoch + evals * overhead

    def _refit(self) -> None:
        done = self.state.trained()
        self.predictor.fit([feature_row(self.state.candidate(r["key"]), r) for r in done],
                           [accuracy(r) for r in done])
        if not self.predictor.ready:
            return
        waiting = [r for r in self.state.records.values()
                   if r["fits"] and r["trained"] is None]
        preds = self.predictor.predict([feature_row(self.state.candidate(r["key"]), r)
                                        for r in waiting])
        for r, p in zip(waiting, preds):
            r["predicted"] = round(p, 5)

    # -- the finalists
    def final(self) -> dict | None:
        opts = self.opts
        n = opts.finalists
        done = sorted(self.state.trained(),
                      key=lambda r: (-accuracy(r), r["measure"]["macs"], r["id"]))
        finalists = done[:n]
        if not finalists:  # nothing trained yet: the best-ranked candidates that fit
            fits = [r for r in self.state.records.values() if r["fits"]]
            fits.sort(key=lambda r: (-(r["proxy"] if r["proxy"] is not None else -math.inf),
                                     r["id"]))
            finalists = fits[:n]
        reserve = RESERVE_VERIFY if opts.verify else RESERVE
        left = opts.time_limit - (time.monotonic() - self.t_start) - reserve
        payloads = []
        for r in finalists:
            weights = self.weights_dir / f"{r['key']}.npz"
            init = None
            if r["trained"] is not None and weights.is_file():
                with np.load(weights) as z:
                    init = {k: z[k] for k in z.files}
            per_epoch = self.train_seconds(r, 1, evals=0)
            budget = left - self.train_seconds(r, 0, evals=2)  # scoring holdout and val
            epochs = int(min(opts.final_epochs, max(0.0, budget) // per_epoch))
            if init is None:  # never trained: at least a short training, whatever the time
                epochs = max(epochs, opts.short_epochs, 1)
            payloads.append({"candidate": r["arch"], "epochs": epochs,
                             "seconds": max(budget, 1.0), "init": init,
                             "init_holdout": accuracy(r) if init is not None else None})
        results = list(self.executor.map("final", payloads))
        best = None
        for r, res in zip(finalists, results):
            r["final"] = {k: v for k, v in res.items() if k != "state_dict"}
            r["final"]["finalist"] = True
            if "error" in res:
                continue
            if best is None or (res["holdout_acc_int8"], -r["measure"]["macs"]) > (
                    best[1]["holdout_acc_int8"], -best[0]["measure"]["macs"]):
                best = (r, res)
            self.progress.update(self)
        self.state.save()
        if best is None:
            errors = "; ".join(res.get("error", "") for res in results)
            raise EdgecError(f"no finalist could be trained and compiled: {errors}")
        return {"record": best[0], "result": best[1]}


# ---- outputs -------------------------------------------------------------------------------

def finish(opts: NasOptions, search: Search, final: dict, target, budgets: dict,
           warnings: list[str], t_start: float) -> dict:
    import torch
    from .measure import compile_file, measurement, save_torchscript
    from .report import write_report

    out = Path(opts.out_dir)
    rec, res = final["record"], final["result"]
    c = search.state.candidate(rec["key"])
    module = search.space.build(c)
    module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in
                            res["state_dict"].items()})
    calib = worker.calib_samples(search.ctx, c.resolution)
    save_torchscript(module, calib, out / "best.pt")
    np.save(out / "calib.npy", calib)
    # best.pt measured from the files, as `edgec compile best.pt --calib calib.npy` sees it
    compiled = compile_file(out / "best.pt", out / "calib.npy", target, opts.optimize)
    m = measurement(compiled, target, rec["measure"]["params"], opts.optimize).to_json()
    if m["arena"] != rec["measure"]["arena"] or m["weights"] != rec["measure"]["weights"]:
        warnings.append(f"best.pt measures arena {m['arena']} B / weights {m['weights']} B, "
                        f"its candidate {rec['measure']['arena']} B / "
                        f"{rec['measure']['weights']} B")
    rec["final"]["measure"] = m
    search.state.save()
    verify = _verify(out, target, opts, budgets, m, warnings) if opts.verify else None
    trained = search.state.trained()
    summary = {
        "target": target.name, "budgets": budgets, "seed": opts.seed,
        "time_limit_seconds": opts.time_limit,
        "wall_seconds": round(time.monotonic() - t_start, 1),
        "search_seconds": round(search.search_seconds, 1),
        "executor": opts.executor, "workers": getattr(search.executor, "workers", None) or 1,
        "candidates": len(search.state.records),
        "fit": sum(r["fits"] for r in search.state.records.values()),
        "over_budget": sum(bool(r["over"]) for r in search.state.records.values()),
        "errors": sum(bool(r["error"]) for r in search.state.records.values()),
        "trained": len(trained),
        "proxy_rank_correlation": spearman([r["proxy"] if r["proxy"] is not None else math.nan
                                            for r in trained], [accuracy(r) for r in trained]),
        "predictor_rank_correlation": cross_validated_rank(
            [feature_row(search.state.candidate(r["key"]), r) for r in trained],
            [accuracy(r) for r in trained], opts.seed),
        "predictor_online_rank_correlation": spearman([p for p, _ in search.online],
                                                      [a for _, a in search.online]),
        "best": {"key": rec["key"], "arch": rec["arch"], "short": rec["short"],
                 "resolution": c.resolution, "input_shape": [1, c.in_channels, c.resolution,
                                                             c.resolution],
                 "val_acc_int8": res["val_acc_int8"], "val_acc_float": res["val_acc_float"],
                 "holdout_acc_int8": res["holdout_acc_int8"],
                 "epochs": ((rec["trained"] or {}).get("train", {}).get("epochs") or 0)
                 + res["train"]["epochs"], "weights_from": res["weights_from"],
                 "arena": m["arena"], "sram": m["sram"], "flash": m["flash"],
                 "weights": m["weights"], "code_estimate": m["code"], "macs": m["macs"],
                 "params": m["params"]},
        "verify": verify,
        "warnings": warnings,
        "outputs": ["best.pt", "calib.npy", CANDIDATES_FILE, "report.html", SUMMARY_FILE],
    }
    write_atomic(out / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
    write_report(out / "report.html", summary, list(search.state.records.values()))
    return summary


def _verify(out: Path, target, opts: NasOptions, budgets: dict, m: dict,
            warnings: list[str]) -> dict:
    """`edgec compile best.pt --calib calib.npy` with build and emulator run: the linker's
    figures against the budgets, and the exact-match check."""
    from ..errors import ToolchainError
    from ..options import CompileOptions
    from ..pipeline import compile_model
    opts_c = CompileOptions(model=out / "best.pt", target=opts.target, out_dir=out / "compiled",
                            calib=out / "calib.npy", optimize=opts.optimize)
    try:
        rep = compile_model(opts_c).report
    except ToolchainError as e:
        warnings.append(f"winner not verified on the board toolchain: {e}")
        return {"skipped": str(e)}
    except EdgecError as e:
        warnings.append(f"edgec compile of best.pt failed: {e}")
        return {"error": str(e)}
    mem, flash, chk = rep["memory"], rep["flash"], rep.get("check") or {}
    v = {"arena": mem["arena_bytes"], "sram": mem["sram_total_bytes"],
         "flash": flash["total_bytes"], "code": flash["code_bytes"],
         "weights": flash["weights_bytes"], "check_mismatches": chk.get("mismatches"),
         "check_samples": chk.get("samples"), "out_dir": str(out / "compiled")}
    v["fits"] = v["sram"] <= budgets["sram"] and v["flash"] <= budgets["flash"]
    v["arena_matches"] = v["arena"] == m["arena"]
    v["flash_estimate_error"] = m["flash"] - v["flash"]
    v["sram_estimate_error"] = m["sram"] - v["sram"]
    if not v["fits"]:
        warnings.append(f"the compiled winner misses a budget: SRAM {v['sram']} B, flash "
                        f"{v['flash']} B (estimates were {m['sram']} B, {m['flash']} B)")
    if not v["arena_matches"]:
        warnings.append(f"edgec compile planned arena {v['arena']} B, nas measured "
                        f"{m['arena']} B")
    return v


def _write_partial_report(opts: NasOptions, search: Search, budgets: dict, target,
                          warnings: list[str], t_start: float) -> None:
    from .report import write_report
    summary = {"target": target.name, "budgets": budgets, "seed": opts.seed,
               "time_limit_seconds": opts.time_limit,
               "wall_seconds": round(time.monotonic() - t_start, 1),
               "candidates": len(search.state.records), "trained": len(search.state.trained()),
               "interrupted": True, "best": None, "warnings": warnings}
    try:
        write_report(Path(opts.out_dir) / "report.html", summary,
                     list(search.state.records.values()))
    except Exception:  # the report is a courtesy here; candidates.jsonl is what matters
        pass


# ---- progress ------------------------------------------------------------------------------

class Progress:
    """On a terminal, a tqdm bar over the time limit (when tqdm is installed); otherwise a
    plain stderr line every LINE_SECONDS (logs stay readable)."""

    LINE_SECONDS = 15.0

    def __init__(self, total_seconds: float, enabled: bool):
        self.enabled, self.total, self.t0 = enabled, total_seconds, time.monotonic()
        self.bar = None
        self.last = -math.inf
        if enabled and sys.stderr.isatty():
            try:
                from tqdm import tqdm
                self.bar = tqdm(total=int(total_seconds), unit="s", desc="nas",
                                file=sys.stderr, leave=True,
                                bar_format="{desc} {bar} {n_fmt}/{total_fmt} s {postfix}")
            except ImportError:
                pass

    def update(self, search: Search) -> None:
        if not self.enabled:
            return
        recs = search.state.records.values()
        trained = search.state.trained()
        best = max((accuracy(r) for r in trained), default=None)
        text = (f"gen {search.generation} measured {len(search.state.records)} fit "
                f"{sum(r['fits'] for r in recs)} trained {len(trained)}"
                + (f" best {best:.3f}" if best is not None else ""))
        self._show(text)

    def note(self, text: str) -> None:
        if self.enabled:
            self._show(text)

    def _show(self, text: str) -> None:
        elapsed = time.monotonic() - self.t0
        if self.bar is not None:
            self.bar.n = min(int(elapsed), int(self.total))
            self.bar.set_postfix_str(text, refresh=True)
        elif elapsed - self.last >= self.LINE_SECONDS:
            self.last = elapsed
            print(f"nas {elapsed:6.0f}/{self.total:.0f} s  {text}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
