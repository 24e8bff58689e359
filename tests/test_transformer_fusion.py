"""Memory-frugal attention and token-blocked MLP (toolchain/lower/{attention,mlp}.py,
runtime_c/kernels/ref/{attention,mlp}_s8.c): each fused call gives the unfused program's bytes
(golden vs golden), the C kernels give the golden bytes on the host and on QEMU, and the
[heads, N, N] scores, the qkv transposes / slices and the [N, hidden] MLP layer are gone from
the planned arena (the MLP's output written over its dying input).

The optimized token kernels (runtime_c/kernels/opt/tokens_opt_s8.c, chosen by
toolchain/lower/select.py: the MLP and fully connected layers on two or more tokens) give
the unfused reference program's bytes too, on the host (portable C) and on QEMU's Cortex-M7
and M4 (SMLAD), int8 and int16 weights, with odd token and channel counts.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from edgec.codegen import emit_sources
from edgec.toolchain.golden import run_program
from edgec.toolchain.ir import Node, Tensor
from edgec.toolchain.lower import lower
from edgec.toolchain.lower.attention import fuse_attention
from edgec.toolchain.lower.mlp import fuse_mlp
from edgec.toolchain.plan import find_overlaps, plan_memory
from kernel_cases import Case, GraphBuilder, _attention_scores, _const_operand, make_inputs

TESTS_DIR = Path(__file__).resolve().parent
HOST_CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O1"]
META = {"model": "attention", "model_sha256": "0" * 64, "target": "host", "command": "pytest"}


def _reshape(b: GraphBuilder, x: str, shape: tuple[int, ...], name: str) -> str:
    """A reshape node (a view: same quantization)."""
    out = f"{name}_out"
    b.tensors[out] = Tensor(out, tuple(shape), "int8", quant=b.tensors[x].quant)
    b.nodes.append(Node(name, "reshape", [x], [out], {"shape": tuple(shape)}))
    samples = b.float_values[x].shape[0]
    b.float_values[out] = b.float_values[x].reshape((samples,) + tuple(shape))
    return out


def _vit_attention(tokens: int, heads: int, d: int, scale: bool = True, kt: bool = False,
                   probs: str = "int8"):
    """A ViT's attention as torch.onnx exports it: a [1, N, 3 * heads * d] qkv projection
    reshaped to [1, N, 3, heads, d], transposed to [3, 1, heads, N, d] and sliced into q, k,
    v; softmax(q k^T * d^-0.5) v; transposed back to [1, N, heads, d] and reshaped to
    [1, N, heads * d]. With kt, k is transposed explicitly (adj_y False); without scale,
    no MUL; probs "int16": int16 probabilities (the precision search's choice)."""
    def build(b: GraphBuilder) -> str:
        c = heads * d
        x = b.input("qkv", (1, tokens, 3 * c), 0.05, -3)
        x = b.node("requantize", [x], {}, out_quant=(0.06, 4), name="proj")
        x5 = _reshape(b, x, (1, tokens, 3, heads, d), "split_heads")
        t = b.node("transpose", [x5], {"perm": (2, 0, 3, 1, 4)}, out_quant=(0.06, 4),
                   name="to_heads")
        parts = []
        for i, name in enumerate("qkv"):
            s = b.node("strided_slice", [t], {"begin": (i, 0, 0, 0, 0),
                                              "end": (i + 1, 1, heads, tokens, d),
                                              "strides": (1,) * 5},
                       out_quant=(0.06, 4), name=f"{name}_slice")
            parts.append(_reshape(b, s, (1, heads, tokens, d), f"{name}_squeeze"))
        q, k, v = parts
        if kt:
            k = b.node("transpose", [k], {"perm": (0, 1, 3, 2)}, out_quant=(0.06, 4),
                       name="k_t")
        scores = b.node("batch_matmul", [q, k], {"adj_x": False, "adj_y": not kt}, name="qk")
        if scale:
            factor = _const_operand(b, "scale", np.full((), d ** -0.5))
            scores = b.node("mul", [scores, factor], {"act_min": None, "act_max": None},
                            name="scale")
        p = b.node("softmax", [scores], {"beta": 1.0}, name="softmax", out_dtype=probs)
        o = b.node("batch_matmul", [p, v], {"adj_x": False, "adj_y": False}, name="pv")
        o = b.node("transpose", [o], {"perm": (0, 2, 1, 3)}, name="from_heads")
        return _reshape(b, o, (1, tokens, c), "merge_heads")
    return build


def _mlp(tokens: int, width: int, hidden: int, out: int | None = None, gelu: bool = True):
    """x -> fc1 (width -> hidden) -> GELU (or fc1's own ReLU clamp) -> fc2 (-> out), after a
    requantize so that the MLP's input is an intermediate that dies at the MLP."""
    def build(b: GraphBuilder) -> str:
        x = b.input("x", (1, tokens, width), 0.05, -3)
        x = b.node("requantize", [x], {}, out_quant=(0.04, 2), name="norm")
        w1 = b.weights("w1", (hidden, width), 0)
        h = b.node("fully_connected", [x, w1, b.bias("b1", x, w1, hidden)],
                   {"act_min": None if gelu else 0.0, "act_max": None},
                   out_shape=(1, tokens, hidden), name="fc1")
        if gelu:
            h = b.node("gelu", [h], {"approximate": False}, name="gelu")
        w2 = b.weights("w2", (out or width, hidden), 0)
        return b.node("fully_connected", [h, w2, b.bias("b2", h, w2, out or width)],
                      {"act_min": None, "act_max": None}, out_shape=(1, tokens, out or width),
                      name="fc2")
    return build


def _fc_tokens(tokens: int, width: int, out: int, act=(None, None), w_scales=None,
               out_q=None):
    """x -> requantize -> fully_connected over [1, tokens, width] (a ViT's qkv / proj)."""
    def build(b: GraphBuilder) -> str:
        x = b.input("x", (1, tokens, width), 0.05, -3)
        x = b.node("requantize", [x], {}, out_quant=(0.04, 2), name="norm")
        w = b.weights("w", (out, width), 0, w_scales)
        return b.node("fully_connected", [x, w, b.bias("b", x, w, out)],
                      {"act_min": act[0], "act_max": act[1]}, out_shape=(1, tokens, out),
                      out_quant=out_q, name="fc")
    return build


CASES = [
    Case("vit_n9_h2_d8", _vit_attention(9, 2, 8), 901),
    Case("vit_n17_h4_d4_no_scale", _vit_attention(17, 4, 4, scale=False), 902),
    Case("vit_n5_h1_d16_kt", _vit_attention(5, 1, 16, kt=True), 903),
    Case("attention_core", _attention_scores, 344),  # q, k, v slices of one [1, 2, 9, 24]
    Case("vit_n40_h2_d8_probs_s16", _vit_attention(40, 2, 8, probs="int16"), 904),
    Case("mlp_n17_c16_h64_gelu", _mlp(17, 16, 64), 911),  # 3 blocks of 8, the last of 1
    Case("mlp_n6_c12_h40_o20_relu", _mlp(6, 12, 40, out=20, gelu=False), 912),
    Case("mlp_n7_c13_h27_o11_gelu", _mlp(7, 13, 27, out=11), 913),  # odd everything
]
IDS = [c.id for c in CASES]
CASES_BY_ID = {c.id: c for c in CASES}


def _programs(case: Case, block: int = 8):
    b = GraphBuilder(np.random.default_rng(case.seed))
    graph = b.graph(case.build(b))
    program = lower(graph)
    return program, fuse_mlp(fuse_attention(program), block), make_inputs(graph, case.seed)


def _golden_all(program, samples: np.ndarray) -> np.ndarray:
    g = program.graph
    return np.stack([run_program(program, {g.inputs[0]: s})[g.outputs[0]].reshape(-1)
                     for s in samples])


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_fused_golden_equals_unfused_golden(case):
    plain, fused, inputs = _programs(case)
    kernels = [c.kernel for c in fused.calls]
    if case.id.startswith("mlp"):
        assert kernels == ["edgec_requantize_s8", "edgec_mlp_s8"]
    else:
        assert kernels.count("edgec_attention_s8") == 1
        assert not [k for k in kernels if k.startswith(("edgec_softmax", "edgec_batch_matmul"))]
        probs_s16 = [int(c.fields["probs_s16"]) for c in fused.calls
                     if c.kernel == "edgec_attention_s8"]
        assert probs_s16 == [int(case.id.endswith("probs_s16"))]
    if case.id.startswith("vit") and not case.id.endswith("_kt"):
        # q, k, v read from the projection's output, written in [N, heads * d]: no copies
        assert not {"edgec_transpose_s8", "edgec_strided_slice_s8"} & set(kernels)
    samples = inputs[plain.graph.inputs[0]]
    want, got = _golden_all(plain, samples), _golden_all(fused, samples)
    bad = np.argwhere(got != want)
    assert bad.size == 0, f"{len(bad)} values differ, first (sample, index) {bad[0]}"


def test_fused_plan_never_holds_the_scores():
    plain, fused, _ = _programs(CASES[1])
    scores = 4 * 17 * 17
    plain_plan, fused_plan = plan_memory(plain), plan_memory(fused)
    assert max(t["bytes"] for t in plain_plan.timeline) >= scores
    assert max(t["bytes"] for t in fused_plan.timeline) < scores
    assert fused_plan.arena_bytes < plain_plan.arena_bytes
    assert find_overlaps(fused_plan) == []


@pytest.mark.parametrize("block", [1, 5, 17, 64])
def test_mlp_any_block_size_gives_the_unfused_bytes(block):
    plain, fused, inputs = _programs(CASES_BY_ID["mlp_n17_c16_h64_gelu"], block)
    samples = inputs[plain.graph.inputs[0]]
    assert fused.calls[-1].scratch_bytes == min(block, 17) * 64
    assert np.array_equal(_golden_all(fused, samples), _golden_all(plain, samples))


def test_mlp_plan_never_holds_the_hidden_layer_and_overwrites_its_input():
    plain, fused, _ = _programs(CASES_BY_ID["mlp_n17_c16_h64_gelu"])
    plain_plan, fused_plan = plan_memory(plain), plan_memory(fused)
    hidden = 17 * 64
    assert max(t["bytes"] for t in plain_plan.timeline) >= hidden
    assert max(t["bytes"] for t in fused_plan.timeline) < hidden
    assert find_overlaps(fused_plan) == []
    out = fused.calls[-1].outputs[0]
    entry = next(t for t in fused_plan.timeline if t["name"] == out)
    assert entry["alias_of"] == fused.calls[-1].inputs[0]
    assert fused_plan.offsets[out] == fused_plan.offsets[fused.calls[-1].inputs[0]]
    # wider output than input: no overwriting
    _, wider, _ = _programs(CASES_BY_ID["mlp_n6_c12_h40_o20_relu"])
    assert wider.calls[-1].inplace == {}


def test_classifier_fc_pairs_are_not_fused():
    """One row, or a narrowing first layer: left to the optimized FC kernels."""
    for tokens, width, hidden in ((1, 16, 64), (6, 32, 16)):
        b = GraphBuilder(np.random.default_rng(3))
        program = lower(b.graph(_mlp(tokens, width, hidden)(b)))
        assert fuse_mlp(program) is program


def test_shared_intermediates_are_not_fused():
    """Scores read by a second call (here a graph output) stay unfused: nothing changes."""
    b = GraphBuilder(np.random.default_rng(5))
    out = _attention_scores(b)
    graph = b.graph(out)
    graph.outputs = ["qk_out"]
    graph.outputs.append(out)
    program = lower(graph)
    assert fuse_attention(program) is program


def host_outputs(program, samples: np.ndarray, tmp_path: Path) -> np.ndarray:
    """The program's C (emitted into tmp_path/src, gcc -Werror) run on the host over
    `samples`: [samples, output bytes]."""
    src = tmp_path / "src"
    emit_sources(program, plan_memory(program), src, META)
    exe = tmp_path / "model"
    subprocess.run(["gcc", *HOST_CFLAGS, "-I", str(src), *map(str, sorted(src.glob("*.c"))),
                    str(TESTS_DIR / "host_main.c"), "-o", str(exe)], check=True,
                   capture_output=True, text=True)
    (tmp_path / "in.bin").write_bytes(samples.tobytes())
    subprocess.run([str(exe), str(tmp_path / "in.bin"), str(tmp_path / "out.bin")],
                   check=True, capture_output=True, timeout=60)
    return np.frombuffer((tmp_path / "out.bin").read_bytes(), np.int8).reshape(len(samples), -1)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_host_c_equals_golden(case, tmp_path):
    _, fused, inputs = _programs(case)
    samples = inputs[fused.graph.inputs[0]]
    got = host_outputs(fused, samples, tmp_path)
    want = _golden_all(fused, samples)
    bad = np.argwhere(got != want)
    assert bad.size == 0, f"{len(bad)} values differ, first (sample, index) {bad[0]}"


def test_firmware_on_qemu_equals_golden(tmp_path):
    """A ViT attention (int8 and int16 probabilities) and a blocked MLP (3 blocks, the last
    partial, in place) on QEMU."""
    from concurrent.futures import ThreadPoolExecutor

    from edgec.toolchain.build import build_firmware
    from edgec.toolchain.emulator import run_firmware
    from edgec.toolchain.target import load_target

    target = load_target("stm32f746")
    cases = [CASES[0], CASES_BY_ID["mlp_n17_c16_h64_gelu"], CASES_BY_ID["vit_n40_h2_d8_probs_s16"]]

    def build(case):
        _, fused, inputs = _programs(case)
        src = tmp_path / case.id / "src"
        emit_sources(fused, plan_memory(fused), src, {**META, "target": target.name})
        return fused, inputs, build_firmware(src, target, tmp_path / case.id)

    with ThreadPoolExecutor(max_workers=3) as pool:
        built = list(pool.map(build, cases))
    for case, (fused, inputs, fw) in zip(cases, built):
        graph = fused.graph
        samples = inputs[graph.inputs[0]]
        res = run_firmware(fw.elf, target, samples.reshape(len(samples), -1),
                           graph.tensors[graph.outputs[0]].nbytes, timeout_s=60)
        want = _golden_all(fused, samples)
        bad = np.argwhere(res.outputs.reshape(want.shape) != want)
        assert bad.size == 0, f"{case.id}: {len(bad)} values differ, first {bad[0]}"


def test_size_precheck_lets_attention_scores_exceed_sram():
    """`edgec compile` rejects early a tensor larger than SRAM, but not attention scores,
    which the fused call never holds whole (the planned arena decides)."""
    from types import SimpleNamespace

    from edgec.toolchain.errors import BudgetError
    from edgec.toolchain.pipeline import check_sizes

    b = GraphBuilder(np.random.default_rng(CASES[1].seed))
    graph = b.graph(CASES[1].build(b))  # qkv [1, 17, 48] 816 B, scores [1, 4, 17, 17] 1156 B
    board = SimpleNamespace(name="tiny", sram_bytes=1000, flash_bytes=1 << 20)
    check_sizes(graph, board)
    with pytest.raises(BudgetError, match="qkv"):
        check_sizes(graph, SimpleNamespace(name="tiny", sram_bytes=800, flash_bytes=1 << 20))


# ---------------------------------------------------------------------------------------
# The optimized token kernels (tokens_opt_s8.c) against the unfused reference program
# ---------------------------------------------------------------------------------------

TINY = 1e-12  # a weight scale whose requantization multiplier flushes to 0
OPT_CASES = [c for c in CASES if c.id.startswith("mlp")] + [
    Case("fc_n9_c16_o48_qkv", _fc_tokens(9, 16, 48), 921),
    Case("fc_n5_c13_o7_relu6", _fc_tokens(5, 13, 7, act=(0.0, 6.0),
                                                   out_q=(0.05, -10)), 922),  # clamp, in place
    Case("fc_n4_c8_o5_zero_multiplier", _fc_tokens(4, 8, 5, w_scales=np.array(
        [TINY, 0.01, TINY, 0.02, 0.015])), 923),
]
OPT_IDS = [c.id for c in OPT_CASES]
OPT_KERNELS = {"edgec_mlp_opt_s8", "edgec_mlp_fast_s8", "edgec_fully_connected_rows_s8",
               "edgec_fully_connected_rows_fast_s8"}
SCRATCH_FN = {"edgec_mlp_opt_s8": "edgec_mlp_opt_s8_scratch_size",
              "edgec_mlp_fast_s8": "edgec_mlp_opt_s8_scratch_size",
              "edgec_fully_connected_rows_s8": "edgec_fully_connected_rows_s8_scratch_size",
              "edgec_fully_connected_rows_fast_s8":
                  "edgec_fully_connected_rows_s8_scratch_size"}


def _opt_programs(case: Case, optimize: str, target=None):
    """(unfused reference program, fused + selected program, inputs)."""
    from edgec.toolchain.lower.select import select_kernels
    from edgec.toolchain.target import load_target
    plain, fused, inputs = _programs(case)
    return plain, select_kernels(fused, target or load_target("stm32f746"), optimize), inputs


def _assert_same(got: np.ndarray, want: np.ndarray, what: str) -> None:
    bad = np.argwhere(got.reshape(want.shape) != want)
    assert bad.size == 0, f"{what}: {len(bad)} values differ, first (sample, index) {bad[0]}"


@pytest.mark.parametrize("optimize", ["speed", "size"])
@pytest.mark.parametrize("case", OPT_CASES, ids=OPT_IDS)
def test_opt_token_kernels_selected_and_golden_exact(case, optimize):
    plain, opt, inputs = _opt_programs(case, optimize)
    kernel = opt.calls[-1].kernel
    family = "mlp" if case.id.startswith("mlp") else "fully_connected_rows"
    wide = "fast_" if optimize == "speed" else ("opt_" if family == "mlp" else "")
    assert kernel == f"edgec_{family}_{wide}s8"
    samples = inputs[plain.graph.inputs[0]]
    _assert_same(_golden_all(opt, samples), _golden_all(plain, samples), "golden")


def test_opt_token_kernels_in_place_and_flags():
    from edgec.toolchain.lower import opt_layout as ol
    by_id = {c.id: c for c in OPT_CASES}
    calls = {cid: _opt_programs(by_id[cid], "size")[1].calls[-1] for cid in by_id}
    assert calls["fc_n5_c13_o7_relu6"].inplace == {0: 0}  # narrower: over its input
    assert calls["fc_n9_c16_o48_qkv"].inplace == {}
    assert calls["mlp_n17_c16_h64_gelu"].inplace == {0: 0}
    assert calls["mlp_n6_c12_h40_o20_relu"].inplace == {}
    assert calls["fc_n5_c13_o7_relu6"].fields["flags"] == ol.FLAG_CLAMP
    assert calls["mlp_n17_c16_h64_gelu"].fields["fc1_flags"] == 0
    _, opt, _ = _opt_programs(by_id["fc_n5_c13_o7_relu6"], "size")
    assert plan_memory(opt).inplace, "the narrowing FC did not run in place"


def _emit_host(case: Case, optimize: str, root: Path):
    plain, opt, inputs = _opt_programs(case, optimize)
    src = root / f"{case.id}_{optimize}" / "src"
    emit_sources(opt, plan_memory(opt), src, META)
    exe = src.parent / "model"
    subprocess.run(["gcc", *HOST_CFLAGS, "-I", str(src), *map(str, sorted(src.glob("*.c"))),
                    str(TESTS_DIR / "host_main.c"), "-o", str(exe)], check=True,
                   capture_output=True, text=True)
    return plain, opt, inputs, exe


def _check_scratch_twin(opt, src: Path, tmp_path: Path) -> None:
    """The C `_scratch_size` twin on the emitted params == the planner's scratch_bytes."""
    text = (src / "edgec_model.c").read_text()
    found = re.findall(r"if \((edgec_\w+)\(&(edgec_l\d+_\w+)_params,", text)
    probes = [f'    printf("%ld\\n", (long){SCRATCH_FN[k]}(&{ident}_params));'
              for k, ident in found if k in SCRATCH_FN]
    assert len(probes) == 1, found
    probe = tmp_path / "probe.c"
    probe.write_text('#include <stdio.h>\n#include "edgec_model.c"\nint main(void)\n{\n'
                     + "\n".join(probes) + "\n    return 0;\n}\n")
    others = [str(p) for p in sorted(src.glob("*.c")) if p.name != "edgec_model.c"]
    subprocess.run(["gcc", "-std=c99", "-I", str(src), str(probe), *others, "-o",
                    str(tmp_path / "probe")], check=True, capture_output=True, text=True)
    out = subprocess.run([str(tmp_path / "probe")], capture_output=True, text=True,
                         check=True).stdout
    assert int(out) == opt.calls[-1].scratch_bytes


@pytest.mark.parametrize("case", OPT_CASES, ids=OPT_IDS)
def test_opt_token_kernels_host_c_equals_reference(case, tmp_path):
    """The portable C paths (gcc on the host), int8 and int16 weights, and the C scratch
    sizes equal to the ones the selection gives the planner."""
    for optimize in ("speed", "size"):
        plain, opt, inputs, exe = _emit_host(case, optimize, tmp_path)
        samples = inputs[plain.graph.inputs[0]]
        (tmp_path / "in.bin").write_bytes(samples.tobytes())
        subprocess.run([str(exe), str(tmp_path / "in.bin"), str(tmp_path / "out.bin")],
                       check=True, capture_output=True, timeout=60)
        got = np.frombuffer((tmp_path / "out.bin").read_bytes(), np.int8)
        _assert_same(got, _golden_all(plain, samples), f"host C ({optimize})")
        if optimize == "size":  # the same scratch function for both variants
            _check_scratch_twin(opt, exe.parent / "src", tmp_path)


M4_OPT = ["mlp_n7_c13_h27_o11_gelu", "fc_n5_c13_o7_relu6"]


def test_opt_token_kernels_firmware_equals_reference(tmp_path):
    """The SMLAD paths on QEMU: every case on the Cortex-M7 (int16 weights at -O2 for speed,
    int8 at -Os for size), two on the Cortex-M4 (mps2-an386) with int8 weights at -O2 (the
    160x160 ViT's choice: its weights leave no flash for int16 ones)."""
    from concurrent.futures import ThreadPoolExecutor

    from edgec.toolchain.build import build_firmware
    from edgec.toolchain.emulator import run_firmware
    from edgec.toolchain.target import load_target

    m7, m4 = load_target("stm32f746"), load_target("stm32f411")
    jobs = [(c, o, o, m7) for c in OPT_CASES for o in ("speed", "size")] + \
        [(c, "size", "speed", m4) for c in OPT_CASES if c.id in M4_OPT]

    def build(job):
        case, select, cflags, target = job
        plain, opt, inputs = _opt_programs(case, select, target)
        assert opt.calls[-1].kernel in OPT_KERNELS
        out = tmp_path / f"{case.id}_{select}_{target.name}"
        emit_sources(opt, plan_memory(opt), out / "src", {**META, "target": target.name})
        return plain, inputs, build_firmware(out / "src", target, out, opt_level=cflags)

    with ThreadPoolExecutor(max_workers=2) as pool:
        built = list(pool.map(build, jobs))
    for (case, select, _, target), (plain, inputs, fw) in zip(jobs, built):
        graph = plain.graph
        samples = inputs[graph.inputs[0]]
        res = run_firmware(fw.elf, target, samples.reshape(len(samples), -1),
                           graph.tensors[graph.outputs[0]].nbytes, timeout_s=60)
        _assert_same(res.outputs, _golden_all(plain, samples),
                     f"{case.id} {select} on {target.name}")
