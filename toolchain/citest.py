"""`edgec test`: a compiled model's firmware on the emulator, checked for users' CI.

    result = run_checks(out_dir, x, labels=y, expect=None, budgets={...},
                        baseline=figures, max_regress=0.02)
    print(format_table(result)); write_junit(result, path); write_markdown(result, path)

Every input runs in ONE emulator launch (emulator.run_firmware takes the batch). The
firmware's outputs are compared with the expected outputs: the user's (`expect`), or
edgec's golden model run on the same inputs from the Program the compile saved
(OUT/golden.npz, toolchain/golden_io.py); the golden model runs in a thread while QEMU
runs. Then the figures (arena, SRAM, stack, flash, instructions per inference, accuracy
when labels are given) are checked against budgets and an earlier run's figures.

Errors in what the user gave (a missing OUT, unreadable inputs, an unknown budget key)
raise EdgecError before anything runs (exit 2). Everything the firmware does is a check:
a crash, a timeout or a wrong output fails the run (exit 1) with a report, never an error.
"""
from __future__ import annotations

import json
import math
import re
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import check, emulator, target as targets
from .errors import EdgecError
from .runner import batch_inputs, load_compiled, load_npy_npz

# figure -> (unit, direction): "max" = lower is better (a budget is a ceiling),
# "min" = higher is better (a budget is a floor).
FIGURES: dict[str, tuple[str, str]] = {
    "arena_bytes": ("B", "max"),
    "sram_bytes": ("B", "max"),
    "stack_bytes": ("B", "max"),
    "flash_bytes": ("B", "max"),
    "weights_bytes": ("B", "max"),
    "code_bytes": ("B", "max"),
    "instructions": ("", "max"),
    "latency_ms": ("ms", "max"),
    "accuracy": ("", "min"),
}
FIGURE_DOC = {
    "arena_bytes": "the planned activation arena",
    "sram_bytes": "static RAM (.data + .bss) + the reserved stack",
    "stack_bytes": "stack high-water measured on the emulator, over these inputs",
    "flash_bytes": "flash: weights + code + constants",
    "weights_bytes": "weights in flash",
    "code_bytes": "code and other constants in flash",
    "instructions": "instructions per inference, the slowest of these inputs",
    "latency_ms": "estimate: instructions / core clock (1 instruction per cycle)",
    "accuracy": "top-1 accuracy of the firmware's int8 outputs against the labels y",
}
PASS, FAIL, SKIP = "pass", "fail", "skip"


@dataclass
class Check:
    name: str
    status: str  # PASS | FAIL | SKIP
    message: str  # one line
    detail: str = ""  # more lines, for the JUnit failure body
    group: str = "check"  # "check" | "budget" | "baseline"
    time_s: float = 0.0


@dataclass
class Regression:
    figure: str
    before: float
    after: float
    worse: bool


@dataclass
class TestResult:
    out_dir: Path
    model: str
    target: str
    emulator: str
    samples: int
    reference: str  # what the outputs were compared with
    figures: dict[str, float | None]
    checks: list[Check]
    baseline: list[Regression] = field(default_factory=list)
    max_regress: float | None = None
    elapsed_s: float = 0.0
    outputs: np.ndarray | None = None  # the firmware's (first) output, source layout
    all_outputs: dict[str, np.ndarray] = field(default_factory=dict)  # every one, by name

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAIL]

    @property
    def passed(self) -> bool:
        return not self.failed

    def to_json(self) -> dict:
        """What --json writes; also readable as a --baseline."""
        return {"format": "edgec-test", "model": self.model, "target": self.target,
                "samples": self.samples, "passed": self.passed, "reference": self.reference,
                "figures": self.figures,
                "checks": [{"name": c.name, "group": c.group, "status": c.status,
                            "message": c.message} for c in self.checks]}


# ---- inputs --------------------------------------------------------------------------------

def load_cases(path: str | Path) -> tuple[np.ndarray | dict[str, np.ndarray],
                                           np.ndarray | None]:
    """(x, y or None) from an .npz (`x`, optional `y`; a single array is x) or an .npy.
    An .npz without `x` holding several arrays besides `y` gives x as a dict of them: a
    model with several inputs, keyed by the input tensors' names (checked in run_checks)."""
    arrays = _load_arrays(path, "inputs")
    y = arrays.get("y")
    if "x" in arrays:
        x = arrays["x"]
    elif len(arrays) == 1:
        x = next(iter(arrays.values()))
    else:
        x = {k: a for k, a in arrays.items() if k != "y"}
    for k, a in (x.items() if isinstance(x, dict) else [("x", x)]):
        if a.ndim < 1 or a.shape[0] == 0:
            raise EdgecError(f"'{path}': {k} has no samples (shape {a.shape})")
        if y is not None and (y.ndim < 1 or len(y) != len(a)):
            raise EdgecError(f"'{path}': y has {y.shape[0] if y.ndim else 0} labels for "
                             f"{len(a)} samples")
    return x, y


def load_expect(path: str | Path) -> np.ndarray:
    """Expected outputs: `y_ref`, else the file's first array."""
    arrays = _load_arrays(path, "expected outputs")
    return arrays["y_ref"] if "y_ref" in arrays else next(iter(arrays.values()))


def _load_arrays(path: str | Path, what: str) -> dict[str, np.ndarray]:
    arrays = load_npy_npz(path, what, "; write it with numpy.savez(path, x=..., y=...)")
    return arrays if isinstance(arrays, dict) else {"x": arrays}


_SIZE = re.compile(r"^\s*([0-9][0-9_]*(?:\.[0-9]+)?)\s*(k|kb|kib|m|mb|mib|b)?\s*$", re.I)


def load_budgets(path: str | Path) -> dict[str, float]:
    """A budgets TOML: figure = limit, at the top level or under [budgets] (see
    examples/ci/budgets.toml). Sizes may be written "64 KB" (KB = KiB = 1024 B);
    accuracy as 0.9 or "90%"."""
    from .target import tomllib
    path = Path(path)
    if not path.is_file():
        raise EdgecError(f"budget file '{path}' not found")
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except Exception as e:
        raise EdgecError(f"'{path}' is not valid TOML: {str(e).splitlines()[0]}") from None
    table = doc.get("budgets", doc)
    if not isinstance(table, dict):
        raise EdgecError(f"'{path}': [budgets] must be a table of figure = limit")
    return parse_budgets(table, str(path))


def parse_budgets(table: dict, where: str = "budgets") -> dict[str, float]:
    budgets = {}
    for key, value in table.items():
        if key not in FIGURES:
            raise EdgecError(f"{where}: unknown budget '{key}'; known: {', '.join(FIGURES)}")
        budgets[key] = _limit(key, value, where)
    return budgets


def _limit(key: str, value: Any, where: str) -> float:
    bad = EdgecError(f"{where}: budget {key} = {value!r} is not a number"
                     + (" (or a size like \"64 KB\")" if key.endswith("_bytes") else
                        " (or a percentage like \"90%\")" if key == "accuracy" else ""))
    if isinstance(value, bool):
        raise bad
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str) and key == "accuracy" and value.strip().endswith("%"):
        try:
            number = float(value.strip()[:-1]) / 100.0
        except ValueError:
            raise bad from None
    elif isinstance(value, str) and key.endswith("_bytes") and _SIZE.match(value):
        m = _SIZE.match(value)
        unit = (m.group(2) or "b").lower()
        number = float(m.group(1).replace("_", "")) * (
            1024 if unit.startswith("k") else 1024 * 1024 if unit.startswith("m") else 1)
    else:
        raise bad
    if not math.isfinite(number) or number < 0 or (key == "accuracy" and number > 1):
        raise EdgecError(f"{where}: budget {key} = {value!r} is out of range"
                         + (" (0..1 or 0%..100%)" if key == "accuracy" else ""))
    return number


def parse_margin(text: str) -> float:
    """"2%" or "2" -> 0.02 (a plain number is a percentage too)."""
    t = str(text).strip()
    try:
        value = float(t[:-1] if t.endswith("%") else t) / 100.0
    except ValueError:
        raise EdgecError(f"--max-regress '{text}' is not a percentage like 2%") from None
    if not math.isfinite(value) or value < 0:
        raise EdgecError(f"--max-regress '{text}' must be a percentage >= 0")
    return value


def load_baseline(path: str | Path) -> dict[str, float]:
    """The figures of an earlier compile (its report.json) or `edgec test --json` run."""
    path = Path(path)
    if not path.is_file():
        raise EdgecError(f"baseline '{path}' not found")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except Exception as e:
        raise EdgecError(f"baseline '{path}' is not JSON ({type(e).__name__})") from None
    figures = figures_of_report(doc) if isinstance(doc, dict) and "memory" in doc else (
        doc.get("figures") if isinstance(doc, dict) else None)
    if not isinstance(figures, dict):
        raise EdgecError(f"baseline '{path}' is neither an edgec report.json nor an "
                         f"'edgec test --json' file")
    out = {k: float(v) for k, v in figures.items()
           if k in FIGURES and isinstance(v, (int, float)) and not isinstance(v, bool)}
    if not out:
        raise EdgecError(f"baseline '{path}' has no figures to compare")
    return out


def figures_of_report(report: dict) -> dict[str, float | None]:
    """The figures a compile's report.json holds (measured on the compile's check inputs)."""
    def get(section: str, key: str):
        value = (report.get(section) or {}).get(key)
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) \
            else None
    return {"arena_bytes": get("memory", "arena_bytes"),
            "sram_bytes": get("memory", "sram_total_bytes"),
            "stack_bytes": get("memory", "stack_bytes"),
            "flash_bytes": get("flash", "total_bytes"),
            "weights_bytes": get("flash", "weights_bytes"),
            "code_bytes": get("flash", "code_bytes"),
            "instructions": get("latency", "instructions"),
            "latency_ms": get("latency", "est_ms")}


# ---- the run -------------------------------------------------------------------------------

def run_checks(out_dir: str | Path, x: np.ndarray, labels: np.ndarray | None = None,
               expect: np.ndarray | None = None, budgets: dict[str, float] | None = None,
               baseline: dict[str, float] | None = None, max_regress: float | None = None,
               atol: float | None = None, timeout_s: float = 1800.0) -> TestResult:
    """Run every sample of x (source layout, float or int8) on the emulator in one launch
    and check it. EdgecError for bad arguments; failures are in the result's checks."""
    started = time.monotonic()
    out_dir = Path(out_dir)
    meta = load_compiled(out_dir)
    specs_in, specs_out = meta["io"]["inputs"], meta["io"]["outputs"]
    spec_out = specs_out[0]
    target = targets.load_compiled_target(out_dir, meta)
    report = _read_report(out_dir)
    elf = out_dir / "firmware.elf"
    if not elf.is_file():
        raise EdgecError(f"'{out_dir}' has no firmware.elf (compiled with --no-build?); "
                         f"compile it without --no-build")
    if shutil.which(target.qemu) is None:
        raise EdgecError(f"{target.qemu} not found; install it with: "
                         f"{emulator.QEMU_APT_HINT}")
    q, _ = batch_inputs(x if isinstance(x, dict) else np.asarray(x), specs_in)
    n = len(q[0])
    if len(specs_out) > 1 and (labels is not None or expect is not None):
        raise EdgecError(f"the model has {len(specs_out)} outputs: labels and --expect "
                         f"work with single-output models; leave them out to check every "
                         f"output against the golden model")
    if labels is not None:
        labels = _labels(labels, n)
    if expect is not None:
        expect = _expected(expect, n, spec_out)
    budgets = dict(budgets or {})
    if "accuracy" in budgets and labels is None:
        raise EdgecError("the budgets set an accuracy, but the inputs have no labels: give "
                         "them as 'y' in the inputs .npz")

    # The golden model in a thread while QEMU runs (it only reads the Program and q).
    golden_box: dict[str, Any] = {}
    stop = threading.Event()
    worker = None
    if expect is None:
        from .golden_io import FILE_NAME, load_program
        program = load_program(out_dir / FILE_NAME)
        worker = threading.Thread(target=_golden_worker,
                                  args=(program, meta["io"], q, golden_box, stop), daemon=True)
        worker.start()
    checks: list[Check] = []
    t0 = time.monotonic()
    run = None
    try:
        run = emulator.run_firmware(elf, target, check.pack_inputs(q),
                                    sum(s["bytes"] for s in specs_out), timeout_s=timeout_s)
        checks.append(Check("runs on the emulator", PASS,
                            f"{n} inferences in one {target.qemu_machine} launch",
                            time_s=time.monotonic() - t0))
    except EdgecError as e:
        checks.append(Check("runs on the emulator", FAIL, str(e),
                            time_s=time.monotonic() - t0))
    finally:
        if run is None:
            stop.set()
        if worker is not None:
            worker.join()
    if "error" in golden_box:
        raise golden_box["error"]

    outputs, all_outputs = None, {}
    if run is not None:
        emulated = check.unpack_outputs(run.outputs, specs_out)
        all_outputs = {s["name"]: check.to_source_layout(e, s)
                       for e, s in zip(emulated, specs_out)}
        outputs = all_outputs[spec_out["name"]]
        if expect is not None:
            reference = "the expected outputs (--expect)"
            checks.append(_compare_expected(expect, outputs, spec_out, atol))
        else:
            reference = "edgec golden model (NumPy int8)"
            for g, e, s in zip(golden_box["y"], emulated, specs_out):
                checks.append(_compare(g, e, reference, golden_box["time"],
                                       s["name"] if len(specs_out) > 1 else None))
    else:
        reference = ("the expected outputs (--expect)" if expect is not None
                     else "edgec golden model (NumPy int8)")
        checks.append(Check(f"outputs match {reference}", SKIP, "the firmware did not run"))

    figures = figures_of_report(report)
    figures["stack_bytes"] = run.stack_bytes if run is not None else None
    figures["instructions"] = max(run.instructions) if run is not None else None
    figures["latency_ms"] = (figures["instructions"] / target.clock_hz * 1e3
                             if figures["instructions"] is not None else None)
    figures["accuracy"] = None
    if labels is not None and outputs is not None:
        pred = outputs.reshape(n, -1).argmax(axis=1)
        figures["accuracy"] = float(np.mean(pred == labels))
    for key, limit in budgets.items():
        checks.append(_budget_check(key, limit, figures.get(key)))
    rows: list[Regression] = []
    if baseline is not None:
        margin = 0.0 if max_regress is None else max_regress
        rows, bchecks = _baseline_checks(baseline, figures, margin)
        checks += bchecks
    return TestResult(out_dir=out_dir, model=str((report.get("model") or {}).get("name")
                                                  or out_dir.name),
                      target=target.name, emulator=target.qemu_machine, samples=n,
                      reference=reference, figures=figures, checks=checks, baseline=rows,
                      max_regress=max_regress if baseline is not None else None,
                      elapsed_s=time.monotonic() - started, outputs=outputs,
                      all_outputs=all_outputs)


def _golden_worker(program, io: dict, q: list[np.ndarray], box: dict,
                   stop: threading.Event):
    t0 = time.monotonic()
    try:
        outs = []
        for k in range(len(q[0])):
            if stop.is_set():
                return
            outs.append(check.golden_all(program, io, [b[k:k + 1] for b in q]))
        box["y"] = [np.concatenate([o[i] for o in outs]) for i in range(len(io["outputs"]))]
    except EdgecError as e:
        box["error"] = EdgecError(f"the golden model failed: {e}")
    except Exception as e:  # a damaged golden.npz that still decoded
        box["error"] = EdgecError(f"the golden model failed ({type(e).__name__}: {e}); "
                                  f"recompile the model")
    box["time"] = time.monotonic() - t0


def _read_report(out_dir: Path) -> dict:
    path = out_dir / "report.json"
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except Exception:
        raise EdgecError(f"'{path}' is not readable JSON; recompile the model") from None
    return doc if isinstance(doc, dict) else {}


def _labels(y: np.ndarray, n: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:  # one-hot or scores
        return y.argmax(axis=1)
    if y.size != n or not np.all(np.equal(np.mod(y, 1), 0)):
        raise EdgecError(f"labels y must be {n} class indices (or one-hot rows), got shape "
                         f"{y.shape} {y.dtype}")
    return y.reshape(n).astype(np.int64)


def _expected(expect: np.ndarray, n: int, spec: dict) -> np.ndarray:
    sample = tuple(spec["source_shape"][1:])
    e = np.asarray(expect)
    if e.shape[:1] != (n,) or e[0].size != int(np.prod(sample, dtype=np.int64)):
        raise EdgecError(f"expected outputs have shape {e.shape}; the model gives "
                         f"({n}, {', '.join(map(str, sample))}) for {n} inputs")
    return e.reshape(n, *sample)


def _mismatch_detail(diff_rows: np.ndarray, max_rows: np.ndarray, limit: int = 10) -> str:
    bad = np.flatnonzero(diff_rows)
    lines = [f"sample {i}: {int(diff_rows[i])} values differ, max |diff| {max_rows[i]:g}"
             for i in bad[:limit]]
    if len(bad) > limit:
        lines.append(f"... and {len(bad) - limit} more samples")
    return "\n".join(lines)


def _compare(golden: np.ndarray, emulated: np.ndarray, reference: str,
             golden_s: float, output: str | None = None) -> Check:
    res = check.compare(golden, emulated, reference)
    g = golden.reshape(len(golden), -1)
    e = emulated.reshape(len(emulated), -1)
    if g.dtype == np.float32 or e.dtype == np.float32:
        differ = np.ascontiguousarray(g, np.float32).view(np.int32) != \
            np.ascontiguousarray(e, np.float32).view(np.int32)
        with np.errstate(invalid="ignore"):
            absd = np.nan_to_num(np.abs(g.astype(np.float64) - e), nan=np.inf)
    else:
        absd = np.abs(g.astype(np.int32) - e.astype(np.int32))
        differ = absd != 0
    name = f"output '{output}' matches {reference}" if output else f"outputs match {reference}"
    if res["mismatches"] == 0:
        return Check(name, PASS, f"{res['samples']} samples, every value equal",
                     time_s=golden_s)
    per_row = differ.sum(axis=1)
    return Check(name, FAIL,
                 f"{res['mismatches']} values differ in {int(np.count_nonzero(per_row))} of "
                 f"{res['samples']} samples (max |diff| {res['max_abs_diff']})",
                 _mismatch_detail(per_row, absd.max(axis=1, initial=0)), time_s=golden_s)


def _compare_expected(expect: np.ndarray, outputs: np.ndarray, spec: dict,
                      atol: float | None) -> Check:
    """The firmware's outputs (source layout) against the user's: int8 against int8
    exactly; float expectations against the dequantized outputs within atol (default: one
    output quantization step for an int8 output, 0 for a float one)."""
    name = "outputs match the expected outputs (--expect)"
    n = len(outputs)
    if np.issubdtype(expect.dtype, np.floating):
        got = outputs.astype(np.float64)
        if not check.is_float(spec):
            got = check.dequantize(outputs, spec).astype(np.float64)
            tol = float(spec["scale"]) if atol is None else atol
        else:
            tol = 0.0 if atol is None else atol
        with np.errstate(invalid="ignore"):
            absd = np.nan_to_num(np.abs(got - expect.astype(np.float64)), nan=np.inf)
        differ = absd > tol * (1 + 1e-9)
        what = f"within {tol:g}"
    else:
        if check.is_float(spec):
            raise EdgecError("the model's output is float32 but the expected outputs are "
                             f"{expect.dtype}; give float expectations")
        if expect.min(initial=0) < -128 or expect.max(initial=0) > 127:
            raise EdgecError("integer expected outputs must be int8 values (-128..127)")
        absd = np.abs(outputs.astype(np.int64) - expect.astype(np.int64))
        tol = 0 if atol is None else atol
        differ = absd > tol
        what = "equal" if tol == 0 else f"within {tol:g}"
    absd, differ = absd.reshape(n, -1), differ.reshape(n, -1)
    bad = int(np.count_nonzero(differ))
    if bad == 0:
        return Check(name, PASS, f"{n} samples, every value {what}")
    per_row = differ.sum(axis=1)
    return Check(name, FAIL, f"{bad} values not {what} in {int(np.count_nonzero(per_row))} "
                 f"of {n} samples (max |diff| {absd.max():g})",
                 _mismatch_detail(per_row, absd.max(axis=1)))


def fmt(key: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    if key == "accuracy":
        return f"{100 * value:.2f}%"
    if key == "latency_ms":
        return f"{value:.3f} ms"
    return f"{int(round(value)):,}" + (" B" if key.endswith("_bytes") else "")


def _budget_check(key: str, limit: float, value: float | None) -> Check:
    direction = FIGURES[key][1]
    sign = "<=" if direction == "max" else ">="
    name = f"budget {key} {sign} {fmt(key, limit)}"
    if value is None:
        return Check(name, FAIL, f"{key} was not measured ({FIGURE_DOC[key]})",
                     group="budget")
    ok = value <= limit if direction == "max" else value >= limit
    if ok:
        return Check(name, PASS, fmt(key, value), group="budget")
    if direction == "max":
        over = f" ({(value - limit) / limit:+.1%})" if limit else ""
        return Check(name, FAIL, f"{fmt(key, value)}{over} is over the budget", group="budget")
    return Check(name, FAIL, f"{fmt(key, value)} is below the budget", group="budget")


def _baseline_checks(before: dict[str, float], after: dict[str, float | None],
                     margin: float) -> tuple[list[Regression], list[Check]]:
    rows, checks = [], []
    for key, (_, direction) in FIGURES.items():
        old, new = before.get(key), after.get(key)
        if old is None or new is None:
            continue
        if direction == "max":
            worse = new > old * (1 + margin) + (1e-12 if old == 0 else 0)
        else:
            worse = new < old * (1 - margin)
        rows.append(Regression(key, old, new, worse))
        change = _change(old, new)
        checks.append(Check(f"baseline {key}", FAIL if worse else PASS,
                            f"{fmt(key, old)} -> {fmt(key, new)} ({change})"
                            + (f", worse by more than {margin:.1%}" if worse else ""),
                            group="baseline"))
    return rows, checks


def _change(old: float, new: float) -> str:
    if old == new:
        return "="
    if old == 0:
        return "new"
    return f"{(new - old) / abs(old):+.1%}"


# ---- text ----------------------------------------------------------------------------------

_MARK = {PASS: "ok", FAIL: "FAIL", SKIP: "skip"}


def format_table(result: TestResult) -> str:
    head = (f"edgec test {result.out_dir}: {result.samples} samples of {result.model} on "
            f"{result.target} (QEMU {result.emulator}, one launch), {result.elapsed_s:.1f} s")
    width = min(max(len(c.name) for c in result.checks), 48)
    lines = [head, f"  {'check':{width}s}  {'result':6s}  detail"]
    for c in result.checks:
        if c.group == "baseline":
            continue
        lines.append(f"  {c.name[:width]:{width}s}  {_MARK[c.status]:6s}  {c.message}")
    if result.baseline:
        lines += ["", f"  baseline (worse by more than {result.max_regress or 0:.1%} fails)",
                  f"  {'figure':14s} {'before':>14s} {'after':>14s} {'change':>8s}"]
        for r in result.baseline:
            lines.append(f"  {r.figure:14s} {fmt(r.figure, r.before):>14s} "
                         f"{fmt(r.figure, r.after):>14s} {_change(r.before, r.after):>8s}"
                         f"  {'WORSE' if r.worse else 'ok'}")
    failed = result.failed
    lines += ["", f"{'FAIL' if failed else 'PASS'}: {len(result.checks) - len(failed)} of "
              f"{len(result.checks)} checks passed"]
    return "\n".join(lines)


def failure_line(result: TestResult) -> str:
    """One line for stderr: how many checks failed and the first few."""
    failed = result.failed
    parts = "; ".join(f"{c.name}: {c.message}" for c in failed[:3])
    more = f"; and {len(failed) - 3} more" if len(failed) > 3 else ""
    return f"{len(failed)} of {len(result.checks)} checks failed: {parts}{more}"


def format_markdown(result: TestResult) -> str:
    """A summary for a pull-request comment."""
    verdict = "FAIL" if result.failed else "PASS"
    lines = [f"### edgec test: **{verdict}** ({result.model} on {result.target})", "",
             f"{result.samples} samples on QEMU `{result.emulator}` in one launch, compared "
             f"with {result.reference}; {len(result.checks) - len(result.failed)} of "
             f"{len(result.checks)} checks passed ({result.elapsed_s:.1f} s).", "",
             "| check | result | detail |", "|---|---|---|"]
    for c in result.checks:
        if c.group == "baseline":
            continue
        lines.append(f"| {_md(c.name)} | {'**FAIL**' if c.status == FAIL else c.status} | "
                     f"{_md(c.message)} |")
    if result.baseline:
        lines += ["", f"#### Against the baseline (worse by more than "
                      f"{result.max_regress or 0:.1%} fails)", "",
                  "| figure | before | after | change | |", "|---|---:|---:|---:|---|"]
        for r in result.baseline:
            lines.append(f"| {r.figure} | {fmt(r.figure, r.before)} | "
                         f"{fmt(r.figure, r.after)} | {_change(r.before, r.after)} | "
                         f"{'**worse**' if r.worse else 'ok'} |")
    shown = {k: v for k, v in result.figures.items() if v is not None}
    if shown:
        lines += ["", "<details><summary>All figures</summary>", "",
                  "| figure | value | what |", "|---|---:|---|"]
        lines += [f"| {k} | {fmt(k, v)} | {FIGURE_DOC[k]} |" for k, v in shown.items()]
        lines += ["", "</details>"]
    details = [c for c in result.failed if c.detail]
    for c in details:
        lines += ["", f"<details><summary>{_md(c.name)}</summary>", "", "```",
                  c.detail, "```", "", "</details>"]
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_outputs(result: TestResult, junit: Path | None = None,
                  summary_md: Path | None = None, json_path: Path | None = None) -> None:
    if junit is not None:
        from .junit import write_junit
        _mkparent(junit)
        write_junit(result, junit)
    if summary_md is not None:
        _mkparent(summary_md)
        summary_md.write_text(format_markdown(result), encoding="utf-8")
    if json_path is not None:
        _mkparent(json_path)
        json_path.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")


def _mkparent(path: Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
