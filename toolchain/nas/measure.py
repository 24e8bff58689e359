"""What a candidate costs on the board, measured by edgec itself (no C build).

The module goes the way `edgec compile model.pt --calib calib.npy` takes it, through the
pipeline's own stage functions: TorchScript file -> torch frontend (ONNX) -> IR, passes,
calibration on a few samples, int8 quantization, lowering, attention and MLP fusion, kernel
selection for the target, memory plan (striped when the board's SRAM is short). So:

    arena    the planned arena, byte for byte what `edgec compile` reports (shapes and kernel
             choices fix it, not the weights: a trained model keeps its candidate's arena)
    weights  the constant tables of the lowered program (the .rodata.edgec_weights section)
    macs     the sum of the kernel calls' MACs (the report's figure)
    code     an estimate: runtime + model code (linear in the calls) + each distinct kernel
             used + the shared code of those kernels' source files, from code_size.json,
             which benchmarks/nas_flash_calibration.py fills from the linker maps of real
             builds (its largest under-estimate on them is added back as a margin, so the
             estimate was never below a real build there)
    flash    weights + code
    sram     arena + the board's reserved stack + the harness's input/output buffers + other
             static data (code_size.json again): what `edgec compile` reports as SRAM used

Results are cached on disk by a key of the candidate, the target, the optimization goal and
a fingerprint of edgec's compiler sources (an edited compiler measures again).
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

MEASURE_VERSION = 1
CODE_SIZE_FILE = Path(__file__).with_name("code_size.json")
_COMPILER_DIRS = ("frontend", "passes", "quantize", "lower", "plan")


@dataclass
class Measurement:
    arena: int  # bytes, the planned arena
    sram: int  # bytes, arena + stack + static data (estimate, see module doc)
    flash: int  # bytes, weights + code estimate
    weights: int  # bytes of constant tables
    code: int  # bytes, estimated
    macs: int
    params: int  # trainable parameters of the float model
    calls: int  # kernel calls (views excluded)
    kernels: list[str]  # distinct kernels used
    input_bytes: int
    output_bytes: int
    seconds: float  # time the measurement took

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class Compiled:
    """A model taken through edgec's compile stages up to the memory plan."""

    program: object  # lower.program.Program
    plan: object  # plan.arena.Plan
    io: dict  # check.io_spec
    source: object  # source.Source


def compile_file(model_path: Path, calib_path: Path, target, optimize: str = "speed") -> Compiled:
    """`edgec compile MODEL --calib CALIB --no-build` up to the plan, through the very stages
    toolchain/pipeline.py runs (quantize_source, plan_program: fusions and striping
    included), so the arena is the one compile reports."""
    from .. import check, source as sources
    from ..options import CompileOptions
    from ..pipeline import plan_program, quantize_source

    opts = CompileOptions(model=Path(model_path), target=target.name, out_dir=Path("unused"),
                          calib=Path(calib_path), optimize=optimize)
    source = sources.load_source(opts)
    qgraph, _, _, _ = quantize_source(opts, source)
    program, plan, _ = plan_program(qgraph, target, opts)
    return Compiled(program=program, plan=plan, io=check.io_spec(qgraph), source=source)


def save_torchscript(module, example: np.ndarray, path: Path) -> None:
    """The module (eval mode) traced on one sample and saved with torch.jit.save."""
    import warnings

    import torch
    module = module.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is what we write
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # the ViT's fixed q, k, v split
        traced = torch.jit.trace(module, torch.from_numpy(np.array(example[:1], np.float32)))
        torch.jit.save(traced, str(path))


def compile_module(module, calib: np.ndarray, target, optimize: str = "speed") -> Compiled:
    """A torch module through compile_file, via a TorchScript file as the user would save it."""
    with tempfile.TemporaryDirectory(prefix="edgec_nas_") as tmp:
        model_path, calib_path = Path(tmp) / "model.pt", Path(tmp) / "calib.npy"
        save_torchscript(module, calib, model_path)
        np.save(calib_path, calib.astype(np.float32))
        return compile_file(model_path, calib_path, target, optimize)


def measurement(compiled: Compiled, target, params: int, optimize: str = "speed",
                seconds: float = 0.0) -> Measurement:
    """The figures of a compiled model (module doc)."""
    program, plan, io = compiled.program, compiled.plan, compiled.io
    calls = [c for c in program.calls if not c.view]
    kernels = sorted({c.kernel for c in calls})
    weights = int(sum(c.const_bytes for c in program.calls))
    in_bytes = int(sum(t["bytes"] for t in io["inputs"]))
    out_bytes = int(sum(t["bytes"] for t in io["outputs"]))
    model = code_model(optimize)
    code = estimate_code(model, len(calls), kernels)
    arena = int(plan.arena_bytes)
    stack = target.stack_bytes if target.stack_region == target.arena_region else 0
    sram = arena + stack + in_bytes + out_bytes + int(model["static_base"])
    return Measurement(arena=arena, sram=sram, flash=weights + code, weights=weights, code=code,
                       macs=int(sum(c.macs for c in program.calls)), params=int(params),
                       calls=len(calls), kernels=kernels, input_bytes=in_bytes,
                       output_bytes=out_bytes, seconds=round(seconds, 3))


def measure(candidate, space, samples: np.ndarray, target, optimize: str = "speed",
            cache_dir: Path | None = None, seed: int = 0) -> Measurement:
    """Measure one candidate; samples (N, C, R, R) at its resolution calibrate it (a few are
    enough: ranges do not change sizes). Reads and fills the cache when cache_dir is given."""
    key = cache_key(candidate, target, optimize)
    path = Path(cache_dir) / f"{key}.json" if cache_dir is not None else None
    if path is not None and path.is_file():
        try:
            return Measurement(**json.loads(path.read_text()))
        except (ValueError, TypeError):
            pass  # a damaged entry: measure again
    import torch
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    module = size_only(space.build(candidate).eval())
    params = sum(p.numel() for p in module.parameters())
    compiled = compile_module(module, samples, target, optimize)
    m = measurement(compiled, target, params, optimize, time.perf_counter() - t0)
    if path is not None:
        write_atomic(path, json.dumps(m.to_json()))
    return m


def size_only(module):
    """Zero the biases of a freshly initialized module: sizes do not change, and lowering's
    int32 accumulator check cannot trip over a random bias that is huge in units of a
    random network's tiny activation scales."""
    import torch
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.Linear) and m.bias is not None:
                m.bias.zero_()
    return module


def cache_key(candidate, target, optimize: str) -> str:
    board = f"{target.name}:{target.flash_bytes}:{target.sram_bytes}:{target.stack_bytes}:" \
            f"{target.dsp}"
    text = f"{MEASURE_VERSION}|{candidate.key}|{board}|{optimize}|{compiler_fingerprint()}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@lru_cache(maxsize=1)
def compiler_fingerprint() -> str:
    """A hash of the compiler stages' sources (and code_size.json): a change re-measures."""
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    files = sorted(p for d in _COMPILER_DIRS for p in (root / d).rglob("*.py"))
    files += sorted(root.glob("*.py")) + [CODE_SIZE_FILE]
    for p in files:
        if p.is_file():
            h.update(p.relative_to(root.parent).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


def write_atomic(path: Path, text: str) -> None:
    """Write a file whole or not at all (a reader, or Ctrl-C, never sees half of it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# ---- the code-size model -------------------------------------------------------------------

@lru_cache(maxsize=2)
def code_model(optimize: str = "speed") -> dict:
    """code_size.json[optimize] (see fit_code_model; one table per --optimize goal: -O2 and
    -Os code differ)."""
    return json.loads(CODE_SIZE_FILE.read_text(encoding="utf-8"))[optimize]


def estimate_code(model: dict, n_calls: int, kernels: list[str]) -> int:
    """Flash bytes besides the weights: runtime + model code (per call) + each kernel used
    + the shared code of the source files those kernels come from + the margin."""
    total = model["runtime"] + model["model_base"] + model["per_call"] * n_calls
    files = set()
    for k in kernels:
        if k in model["kernels"]:
            total += model["kernels"][k]
            files.add(model["kernel_file"][k])
        else:
            total += model["unknown_kernel"]
    total += sum(model["files"][f] for f in files)
    return int(round(total + model["margin"]))


def fit_code_model(builds: list[dict], meta: dict) -> dict:
    """The code-size model from real builds, each {"code": flash code bytes, "calls": n,
    "kernels": [names], "static_other": bytes, "runtime", "model": bytes of the runtime and
    of edgec_model.o, "kernel_bytes": {kernel: bytes of its function}, "kernel_file":
    {kernel: source file}, "shared": {file: bytes of its other sections}} (split from the
    linker map by benchmarks/nas_flash_calibration.py).

    runtime, each kernel and each file's shared code: the largest seen; model code: a least
    squares line in the number of calls. The largest under-estimate of the result on the
    builds is added as `margin`, so the estimate was at or above every build it saw."""
    calls = np.array([b["calls"] for b in builds], float)
    model_bytes = np.array([b["model"] for b in builds], float)
    per_call, base = np.polyfit(calls, model_bytes, 1) if np.ptp(calls) > 0 else \
        (0.0, float(model_bytes.max()))
    table = {
        "runtime": int(max(b["runtime"] for b in builds)),
        "model_base": round(float(base), 1), "per_call": round(float(per_call), 2),
        "kernels": {}, "kernel_file": {}, "files": {}, "margin": 0,
        "static_base": int(max(b["static_other"] for b in builds)),
    }
    for b in builds:
        for k, n in b["kernel_bytes"].items():
            table["kernels"][k] = max(table["kernels"].get(k, 0), int(n))
            table["kernel_file"][k] = b["kernel_file"][k]
        for f, n in b["shared"].items():
            table["files"][f] = max(table["files"].get(f, 0), int(n))
    for f in table["kernel_file"].values():
        table["files"].setdefault(f, 0)
    table["unknown_kernel"] = max((n + table["files"][table["kernel_file"][k]]
                                   for k, n in table["kernels"].items()), default=4096)
    err = np.array([estimate_code(table, b["calls"], b["kernels"]) - b["code"]
                    for b in builds], float)
    table["margin"] = int(np.ceil(max(0.0, -err.min())))
    err += table["margin"]
    table["calibration"] = {**meta, "builds": len(builds),
                            "error_bytes_min": int(err.min()), "error_bytes_max": int(err.max()),
                            "error_bytes_mean": round(float(err.mean()), 1)}
    return table
