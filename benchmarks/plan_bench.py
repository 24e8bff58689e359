"""Memory planner benchmark on synthetic programs (no kernels, no toolchain needed), and on
the shared models through edgec's real lowering and kernel selection (no build).

    python benchmarks/plan_bench.py [--models DIR] [--target stm32f746]

For each synthetic program: the layer-wise lower bound in the model's own order and in the
chosen order, the bound with in-place sharing, the best greedy arena (TFLM-style baseline),
the final arena, which methods won, and the planning time (median of 5 runs); then whether
a 100-layer network plans in under a second.

For each shared model (the real program edgec compiles): the lower bound of activations
alone (anchors.md's definition) and with the kernels' scratch, the arena with every
technique, an ablation computed live (in place off, reordering off, both off, zero-copy
concat off, all off), the ratios to the bound and to TFLM's head (parsed from
shared/anchors.md), and which techniques made the difference.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from edgec.toolchain.ir import Graph, Tensor
from edgec.toolchain.lower.program import KernelCall, Program
from edgec.toolchain.plan import find_overlaps, plan_memory

sys.path.insert(0, str(Path(__file__).resolve().parent))  # also when loaded by the tests
from shared_data import anchors, models_dir  # noqa: E402


class Builder:
    """Hand-made NHWC int8 programs: only what the planner reads (names, sizes, scratch)."""

    def __init__(self, name: str, shape: tuple[int, ...]):
        self.tensors: dict[str, Tensor] = {}
        self.calls: list[KernelCall] = []
        self.name = name
        self.input = self.tensor("input", shape)

    def tensor(self, name: str, shape: tuple[int, ...]) -> str:
        self.tensors[name] = Tensor(name, tuple(shape), "int8")
        return name

    def call(self, op: str, inputs: list[str], shape: tuple[int, ...], *, scratch: int = 0,
             inplace: dict[int, int] | None = None, weights: int = 0) -> str:
        name = f"{op}{len(self.calls)}"
        out = self.tensor(f"t{len(self.calls)}", shape)
        self.calls.append(KernelCall(name, op, f"edgec_{op}_s8", f"edgec_{op}_params", {},
                                     list(inputs), [out], scratch_bytes=scratch,
                                     macs=weights * int(np.prod(shape[1:3])),
                                     inplace=dict(inplace or {})))
        return out

    def shape(self, name: str) -> tuple[int, ...]:
        return self.tensors[name].shape

    def conv(self, x: str, cout: int, k: int = 1, stride: int = 1) -> str:
        n, h, w, cin = self.shape(x)
        scratch = 2 * cin * k * k if k > 1 else 0  # im2col of two output pixels, int16
        return self.call("conv2d", [x], (n, -(-h // stride), -(-w // stride), cout),
                         scratch=scratch, weights=cout * cin * k * k)

    def dwconv(self, x: str, stride: int = 1, inplace: bool = True) -> str:
        n, h, w, c = self.shape(x)
        return self.call("dwconv2d", [x], (n, -(-h // stride), -(-w // stride), c),
                         scratch=h * w if inplace else 0,  # one input channel (in place)
                         inplace={0: 0} if inplace else None, weights=9 * c)

    def add(self, a: str, b: str, inplace: bool = True) -> str:
        return self.call("add", [a, b], self.shape(a), inplace={0: 1} if inplace else None)

    def program(self, outputs: list[str]) -> Program:
        graph = Graph(self.tensors, [], [self.input], outputs, meta={"name": self.name})
        return Program(graph, self.calls)


def chain(layers: int = 100) -> Program:
    """A plain CNN chain: conv/pool stages that halve the map and double channels."""
    b = Builder("chain", (1, 64, 64, 3))
    x, c = b.input, 8
    for i in range(layers - 1):
        stride = 2 if i % 20 == 19 else 1
        c = min(c * 2, 128) if stride == 2 else c
        x = b.conv(x, c, 3 if i % 2 == 0 else 1, stride)
    return b.program([b.call("fc", [x], (1, 10))])


def mobilenet_v2(inplace: bool = True, blocks: int = 25) -> Program:
    """Inverted residual blocks (1x1 expand, 3x3 depthwise, 1x1 project, add): ~100 calls."""
    b = Builder("mobilenet_v2", (1, 96, 96, 3))
    x = b.conv(b.input, 16, 3, 2)
    c = 16
    stages = [(24, 2), (32, 2), (64, 2), (96, 1), (160, 2)]
    for i in range(blocks):
        stage = min(i * len(stages) // blocks, len(stages) - 1)
        cout, stride = stages[stage]
        first = i == 0 or stage != min((i - 1) * len(stages) // blocks, len(stages) - 1)
        stride = stride if first else 1
        h = b.conv(x, c * 6)
        h = b.dwconv(h, stride, inplace)
        h = b.conv(h, cout)
        x = b.add(x, h, inplace) if stride == 1 and cout == c else h
        c = cout
    x = b.conv(x, 320)
    x = b.call("avgpool", [x], (1, 1, 1, 320))
    return b.program([b.call("fc", [x], (1, 10))])


def branchy(modules: int = 8) -> Program:
    """Inception-style modules (four branches, concat) with squeeze-excite gates."""
    b = Builder("branchy", (1, 48, 48, 16))
    x = b.conv(b.input, 32, 3)
    for m in range(modules):
        n, h, w, c = b.shape(x)
        a = b.conv(x, 16)
        bb = b.conv(b.conv(x, 24), 32, 3)
        cc = b.conv(b.conv(b.conv(x, 8), 16, 3), 16, 3)
        d = b.conv(b.call("maxpool", [x], (n, h, w, c)), 16)
        cat = b.call("concat", [a, bb, cc, d], (n, h, w, 80))
        s = b.call("avgpool", [cat], (1, 1, 1, 80))
        s = b.call("fc", [b.call("fc", [s], (1, 20))], (1, 80))
        x = b.call("mul", [cat, s], (n, h, w, 80), inplace={0: 0})
        if m % 3 == 2:
            x = b.call("maxpool", [x], (n, -(-h // 2), -(-w // 2), 80))
    return b.program([b.call("fc", [b.call("avgpool", [x], (1, 1, 1, 80))], (1, 10))])


def random_dag(layers: int, seed: int) -> Program:
    """Each call reads 1-2 of the last 6 tensors; odd sizes: a fragmentation stress test."""
    rng = np.random.default_rng(seed)
    b = Builder(f"random{seed}", (int(rng.integers(1, 4096)),))
    avail = [b.input]
    for _ in range(layers):
        window = avail[-6:]
        ins = list(rng.choice(window, size=min(len(window), int(rng.integers(1, 3))),
                              replace=False))
        size = int(rng.integers(1, 64)) if rng.random() < 0.5 else int(rng.integers(1, 8192))
        scratch = int(rng.integers(1, 2048)) if rng.random() < 0.3 else 0
        avail.append(b.call("op", ins, (size,), scratch=scratch))
    return b.program([avail[-1]])


# ---- the shared TFLite models: shapes only, with what-if in-place kernels ------------------

ELEMENTWISE = {"ADD", "MUL", "RESHAPE", "SOFTMAX", "QUANTIZE", "LOGISTIC", "RELU", "TANH"}


def tflite_program(path: Path, level: int) -> Program:
    """The model's activation tensors and ops, for the planner only. level: which kernels
    are assumed to run in place: 0 none, 1 elementwise/reshape/softmax, 2 + depthwise
    (channel by channel, or row by row with a partial overlap when the output grows),
    3 + 1x1 convolutions with C_out <= C_in (pixel by pixel, one output pixel buffered)."""
    import tflite
    codes = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    model = tflite.Model.GetRootAsModel(path.read_bytes(), 0)
    g = model.Subgraphs(0)
    b = Builder(path.stem, (1,))
    b.tensors.clear()

    def name(t: int) -> str | None:
        tensor = g.Tensors(t)
        if t < 0 or model.Buffers(tensor.Buffer()).DataLength():
            return None  # absent or constant (flash)
        key = f"t{t}"
        b.tensors.setdefault(key, Tensor(key, tuple(int(d) for d in tensor.ShapeAsNumpy()),
                                         "int8"))
        return key

    for i in range(g.OperatorsLength()):
        op = g.Operators(i)
        oc = model.OperatorCodes(op.OpcodeIndex())
        kind = codes[max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())]
        ins = [n for n in (name(t) for t in op.InputsAsNumpy()) if n]
        outs = [n for n in (name(t) for t in op.OutputsAsNumpy()) if n]
        x, y = b.tensors[ins[0]], b.tensors[outs[0]]
        inplace, overlap, scratch = {}, {}, 0
        if level >= 1 and kind in ELEMENTWISE:
            inplace = {0: 0}
        if level >= 2 and kind == "DEPTHWISE_CONV_2D":
            opts = tflite.DepthwiseConv2DOptions()
            table = op.BuiltinOptions()
            opts.Init(table.Bytes, table.Pos)
            (_, hi, wi, ci), (_, ho, wo, co) = x.shape, y.shape
            kh = g.Tensors(op.InputsAsNumpy()[1]).ShapeAsNumpy()[1]
            stride = opts.StrideH()
            pad = max((ho - 1) * stride + kh - hi, 0) // 2 if opts.Padding() == 0 else 0
            inplace = {0: 0}
            if co == ci:
                scratch = hi * wi  # one input channel
            else:  # row by row: output row r may only overwrite input rows < stride*r-pad
                need = max((r + 1) * wo * co - wi * ci * max(0, stride * r - pad)
                           for r in range(ho))
                overlap = {0: max(y.nbytes - need, 0)}
        if level >= 3 and kind == "CONV_2D":
            kshape = g.Tensors(op.InputsAsNumpy()[1]).ShapeAsNumpy()
            if kshape[1] == kshape[2] == 1 and y.shape[-1] <= x.shape[-1]:
                inplace, scratch = {0: 0}, y.shape[-1]  # one output pixel
        b.calls.append(KernelCall(f"{kind.lower()}_{i}", kind.lower(), "", "", {}, ins, outs,
                                  scratch_bytes=scratch, inplace=inplace,
                                  inplace_overlap=overlap))
    inputs = [name(t) for t in g.InputsAsNumpy()]
    graph = Graph(b.tensors, [], inputs, [name(t) for t in g.OutputsAsNumpy()])
    return Program(graph, b.calls)


def shared_models(models: Path) -> None:
    levels = ["none", "elementwise", "+ depthwise", "+ 1x1 conv"]
    head = (f"{'model':24s} {'TFLM head':>9s} {'bound':>7s}  "
            + "  ".join(f"{lv:>12s}" for lv in levels))
    print(head)
    print("-" * len(head))
    heads = {k: v["TFLM head"] for k, v in anchors(models).items() if v.get("TFLM head")}
    for stem, tflm in heads.items():
        path = models / f"{stem}.tflite"
        if not path.is_file() or stem == "mnist_lstm_int8":  # edgec rejects the LSTM
            continue
        plans = [plan_memory(tflite_program(path, level)) for level in range(4)]
        for plan, level in zip(plans, range(4)):
            assert find_overlaps(plan) == [], (stem, level)
        print(f"{stem:24s} {tflm:9,d} {plans[0].lower_bound_bytes:7,d}  "
              + "  ".join(f"{p.arena_bytes:12,d}" for p in plans))
    print("\narena for each what-if set of in-place kernels (declared by this script, not "
          "by edgec's lowering); "
          "bound = the layer-wise bound without in place, as in anchors.md")


PROGRAMS = {
    "chain (100 calls)": chain,
    "mobilenet_v2 (in place)": mobilenet_v2,
    "mobilenet_v2 (no in place)": lambda: mobilenet_v2(inplace=False),
    "branchy SE/concat": branchy,
    "random DAG (25 calls, s=1)": lambda: random_dag(25, 1),
    "random DAG (25 calls, s=2)": lambda: random_dag(25, 2),
    "random DAG (100 calls)": lambda: random_dag(100, 3),
}


# ---- the shared models through edgec's own lowering: an ablation of the planner ------------

ABLATIONS = {  # label -> plan_memory switches
    "no in-place": {"inplace": False},
    "no reorder": {"reorder": False},
    "neither": {"inplace": False, "reorder": False},
    "no concat": {"concat": False},
    "all off": {"inplace": False, "reorder": False, "concat": False},
}
TECHNIQUES = {"no in-place": "in place", "no reorder": "reorder",
              "no concat": "zero-copy concat"}


def lowered_program(path: Path, target: str):
    """The program `edgec compile` would plan for this model (PTQ on generated data for a
    float model)."""
    from edgec.toolchain import calibdata
    from edgec.toolchain import source as sources
    from edgec.toolchain.lower import lower
    from edgec.toolchain.lower.select import select_kernels
    from edgec.toolchain.options import CompileOptions
    from edgec.toolchain.passes import run_passes
    from edgec.toolchain.quantize import calibrate, quantize
    from edgec.toolchain.target import load_target
    with tempfile.TemporaryDirectory() as tmp:
        opts = CompileOptions(model=path, target=target, out_dir=Path(tmp) / "out")
        source = sources.load_source(opts)
        if source.quantized:
            qgraph = run_passes(source.graph, quantized=True)
        else:
            graph = run_passes(source.graph)
            samples, _ = calibdata.load_or_generate(opts, source)
            qgraph = quantize(graph, calibrate(source.onnx, graph, samples))
        return select_kernels(lower(qgraph), load_target(target), opts.optimize)


def real_models(models: Path, target: str) -> None:
    from edgec.toolchain.errors import EdgecError
    heads = {k: v.get("TFLM head") for k, v in anchors(models).items()}
    cols = ["bound", "+scratch", *ABLATIONS, "arena", "/bound", "/TFLM"]
    head = f"{'model':26s} {'TFLM':>6s} " + " ".join(f"{c:>11s}" for c in cols) + "  helped"
    print(f"shared models, target {target}: the program edgec compiles, planned with every "
          "technique and with some switched off (B)")
    print(head)
    print("-" * len(head))
    for path in sorted(models.glob("*.tflite")):
        name, tflm = path.stem, heads.get(path.stem)
        try:
            program = lowered_program(path, target)
        except EdgecError as e:
            print(f"{name:26s} {_n(tflm):>6s}  rejected: {str(e)[:70]}")
            continue
        plan = plan_memory(program)
        assert find_overlaps(plan) == [], name
        off = {label: plan_memory(program, **kw).arena_bytes for label, kw in ABLATIONS.items()}
        helped = [what for label, what in TECHNIQUES.items() if off[label] > plan.arena_bytes]
        ratio = plan.arena_bytes / plan.lower_bound_activations_bytes
        vs_tflm = f"{plan.arena_bytes / tflm:.2f}" if tflm else "-"
        cells = [plan.lower_bound_activations_bytes, plan.lower_bound_bytes,
                 *off.values(), plan.arena_bytes]
        print(f"{name:26s} {_n(tflm):>6s} " + " ".join(f"{v:11,d}" for v in cells)
              + f" {ratio:11.2f} {vs_tflm:>11s}  {', '.join(helped) or '-'}")
    print("bound = live activation bytes at the busiest layer in the chosen order (anchors.md's "
          "bound); +scratch = with the kernels' scratch; TFLM = its head (anchors.md); "
          "/bound, /TFLM: arena ratios; 'all off': placement alone, in the model's order "
          "(no in place, no reordering, no zero-copy concat); TFLM '-': it rejects the "
          "model\n")


def _n(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=None, help="shared models folder")
    ap.add_argument("--target", default="stm32f746")
    args = ap.parse_args()
    head = (f"{'program':28s} {'calls':>5s} {'bound orig':>10s} {'bound':>8s} {'in-place':>8s} "
            f"{'greedy':>8s} {'arena':>8s}  {'order':10s} {'placement':13s} {'ms':>6s}")
    print(head)
    print("-" * len(head))
    for label, make in PROGRAMS.items():
        program = make()
        times = []
        for _ in range(5):
            start = time.perf_counter()
            plan = plan_memory(program)
            times.append((time.perf_counter() - start) * 1e3)
        assert find_overlaps(plan) == []
        moved = "" if plan.order == list(range(len(program.calls))) else "*"
        print(f"{label:28s} {len(program.calls):5d} {plan.lower_bound_original_bytes:10,d} "
              f"{plan.lower_bound_bytes:8,d} {plan.lower_bound_inplace_bytes:8,d} "
              f"{plan.greedy_arena_bytes:8,d} {plan.arena_bytes:8,d}  "
              f"{plan.order_method + moved:10s} {plan.method:13s} "
              f"{statistics.median(times):6.1f}")
        if plan.gap_reason:
            print(f"{'':28s} gap {plan.gap_bytes:,} B: {plan.gap_reason}")
    print("\norder: * = calls reordered; bound = layer-wise bound in the chosen order; "
          "in-place = the same with in-place outputs sharing their input's bytes")
    for label, layers in (("chain", 100), ("mobilenet_v2", 25)):
        program = chain(layers) if label == "chain" else mobilenet_v2(blocks=layers)
        start = time.perf_counter()
        plan_memory(program)
        seconds = time.perf_counter() - start
        print(f"{label} of {len(program.calls)} calls planned in {seconds * 1e3:.0f} ms "
              f"(goal: under a second: {'yes' if seconds < 1 else 'NO'})")
    print()
    models = models_dir(args.models)
    real_models(models, args.target)
    shared_models(models)


if __name__ == "__main__":
    main()
