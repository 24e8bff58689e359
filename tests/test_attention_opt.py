"""The optimized fused attention (runtime_c/kernels/opt/attention_opt_s8.c, chosen by
toolchain/lower/select.py): the reference attention's bytes, int8 and int16 probabilities, on
the host (portable path) and on QEMU Cortex-M7 (DSP path); its scratch size twin agrees with
the selection's.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from edgec.codegen import emit_sources
from edgec.toolchain.lower.select import select_kernels
from edgec.toolchain.plan import plan_memory
from edgec.toolchain.target import load_target
from test_transformer_fusion import CASES_BY_ID, META, _golden_all, _programs, host_outputs

TARGET = load_target("stm32f746")
OPT = ["vit_n9_h2_d8", "vit_n17_h4_d4_no_scale", "vit_n5_h1_d16_kt", "attention_core",
       "vit_n40_h2_d8_probs_s16"]


def _selected(case_id: str):
    plain, fused, inputs = _programs(CASES_BY_ID[case_id])
    return plain, select_kernels(fused, TARGET), inputs


@pytest.mark.parametrize("case_id", OPT)
def test_host_c_equals_unfused_golden(case_id, tmp_path):
    plain, opt, inputs = _selected(case_id)
    (call,) = [c for c in opt.calls if c.op == "attention"]
    assert call.kernel == "edgec_attention_opt_s8"
    samples = inputs[opt.graph.inputs[0]]
    got = host_outputs(opt, samples, tmp_path)
    want = _golden_all(plain, samples)  # the unfused reference program
    bad = np.argwhere(got != want)
    assert bad.size == 0, f"{len(bad)} values differ, first (sample, index) {bad[0]}"

    # the C scratch size twin == what the planner reserved
    src = tmp_path / "src"
    probe = tmp_path / "probe.c"
    probe.write_text('#include <stdio.h>\n#include "edgec_model.c"\nint main(void)\n{\n'
                     + "".join(f'    printf("%ld\\n", (long)edgec_attention_opt_s8_scratch_size('
                               f'&{name}));\n' for name in _params_names(src))
                     + "    return 0;\n}\n")
    others = [str(p) for p in sorted(src.glob("*.c")) if p.name != "edgec_model.c"]
    subprocess.run(["gcc", "-std=c99", "-I", str(src), str(probe), *others, "-o",
                    str(tmp_path / "probe")], check=True, capture_output=True, text=True)
    out = subprocess.run([str(tmp_path / "probe")], capture_output=True, text=True, check=True)
    assert [int(v) for v in out.stdout.split()] == [call.scratch_bytes]


def _params_names(src: Path) -> list[str]:
    import re
    text = (src / "edgec_model.c").read_text()
    return re.findall(r"if \(edgec_attention_opt_s8\(&(edgec_l\d+_\w+_params),", text)


def test_strided_or_odd_depth_keeps_the_reference_kernel():
    """The optimized kernel reads q and k rows as words: other layouts stay reference."""
    from dataclasses import replace

    from edgec.toolchain.lower.select import select_call
    _, fused, _ = _programs(CASES_BY_ID["vit_n9_h2_d8"])
    (call,) = [c for c in fused.calls if c.op == "attention"]
    assert select_call(call, wide=True).kernel == "edgec_attention_opt_s8"
    for change in ({"q_depth_stride": 2}, {"k_depth_stride": 3}, {"depth": 6}):
        odd = replace(call, fields={**call.fields, **change})
        assert select_call(odd, wide=True) is odd


def test_firmware_on_qemu_equals_unfused_golden(tmp_path):
    """The DSP path (SMLAD scores) on Cortex-M7, int8 and int16 probabilities."""
    from concurrent.futures import ThreadPoolExecutor

    from edgec.toolchain.build import build_firmware
    from edgec.toolchain.emulator import run_firmware

    def build(case_id):
        plain, opt, inputs = _selected(case_id)
        src = tmp_path / case_id / "src"
        emit_sources(opt, plan_memory(opt), src, {**META, "target": TARGET.name})
        return plain, opt, inputs, build_firmware(src, TARGET, tmp_path / case_id)

    cases = ["vit_n9_h2_d8", "vit_n40_h2_d8_probs_s16"]
    with ThreadPoolExecutor(max_workers=2) as pool:
        built = list(pool.map(build, cases))
    for case_id, (plain, opt, inputs, fw) in zip(cases, built):
        graph = opt.graph
        samples = inputs[graph.inputs[0]]
        res = run_firmware(fw.elf, TARGET, samples.reshape(len(samples), -1),
                           graph.tensors[graph.outputs[0]].nbytes, timeout_s=60)
        want = _golden_all(plain, samples)
        bad = np.argwhere(res.outputs.reshape(want.shape) != want)
        assert bad.size == 0, f"{case_id}: {len(bad)} values differ, first {bad[0]}"
