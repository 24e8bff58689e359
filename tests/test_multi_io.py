"""Models with several inputs and outputs, end to end: a .tflite with 2 inputs and 3 outputs
(a detection-style head) compiled for stm32f746 and run on QEMU, exact against the golden
model and LiteRT BUILTIN_REF on every output; its C API on the host; `edgec run` with .npz
in and out, and its errors; `edgec test` with an .npz keyed by input names; a PyTorch model
with 2 outputs through PTQ."""
from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
import torch
from torch import nn

from conftest import calib_like, edgec
from edgec.codegen.c_emitter import io_identifiers
from edgec.toolchain import check, golden_io
from kernel_cases import to_tflite
from models import _conv_bn, _init
from net_builders import multi_io
from test_codegen import CFLAGS

INPUTS = {"image": (1, 10, 10, 3), "prior": (1, 10, 10, 6)}
OUTPUTS = {"boxes_out": (1, 10, 10, 4), "score_out": (1, 5), "classes_out": (1, 3)}


@pytest.fixture(scope="module")
def detection(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("multi_io")
    (tmp / "det.tflite").write_bytes(to_tflite(multi_io()))
    assert edgec("compile", tmp / "det.tflite", "--target", "stm32f746", "-o", tmp / "net") == 0
    return tmp


def _int8_batches(n: int, seed: int) -> dict[str, np.ndarray]:
    """Uniform int8 samples, the first two all -128 and all 127."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in INPUTS.items():
        x = rng.integers(-128, 128, size=(n, *shape[1:])).astype(np.int8)
        x[0], x[1] = -128, 127
        out[name] = x
    return out


def test_compile_checks_every_output_against_golden_and_litert(detection):
    rep = json.loads((detection / "net" / "report.json").read_text())
    chk = rep["check"]
    assert chk["samples"] >= 16 and chk["mismatches"] == 0
    assert [o["name"] for o in chk["outputs"]] == list(OUTPUTS)
    assert all(o["mismatches"] == 0 for o in chk["outputs"])
    lite = chk["litert"]
    assert lite["reference"].startswith("LiteRT BUILTIN_REF") and lite["samples"] >= 16
    assert [o["name"] for o in lite["outputs"]] == list(OUTPUTS)
    assert lite["mismatches"] == 0
    io = json.loads((detection / "net" / "model.json").read_text())["io"]
    assert [(s["name"], tuple(s["shape"])) for s in io["inputs"]] == list(INPUTS.items())
    assert [(s["name"], tuple(s["shape"])) for s in io["outputs"]] == list(OUTPUTS.items())
    md = (detection / "net" / "report.md").read_text()
    assert all(f"'{name}'" in md for name in OUTPUTS)


def test_io_identifiers_are_distinct_c_names():
    assert io_identifiers(["image", "prior"]) == ["IMAGE", "PRIOR"]
    assert io_identifiers(["in:0", "in/0", "In_0", "serving 1"]) == \
        ["IN_0", "IN_0_2", "IN_0_3", "SERVING_1"]


_HOST_MAIN = r"""
#include "edgec_model.h"
#include <stdio.h>
#include <string.h>
typedef char n_in_ok[(EDGEC_NUM_INPUTS == 2 && EDGEC_NUM_OUTPUTS == 3) ? 1 : -1];
typedef char sizes_ok[(EDGEC_INPUT_IMAGE_SIZE == 300 && EDGEC_INPUT_PRIOR_SHAPE_C == 6
                       && EDGEC_OUTPUT_BOXES_OUT_SIZE == 400 && EDGEC_OUTPUT_SCORE_OUT_SIZE == 5
                       && EDGEC_OUTPUT_CLASSES_OUT_SHAPE_C == 3
                       && EDGEC_OUTPUT_CLASSES_OUT_ZERO_POINT == -128
                       && EDGEC_INPUTS_BYTES == 900 && EDGEC_OUTPUTS_BYTES == 408) ? 1 : -1];
static const float scale = EDGEC_INPUT_PRIOR_SCALE * EDGEC_OUTPUT_SCORE_OUT_SCALE;
int main(void)
{
    static int8_t image[EDGEC_INPUT_IMAGE_SIZE], prior[EDGEC_INPUT_PRIOR_SIZE];
    static int8_t boxes[EDGEC_OUTPUT_BOXES_OUT_SIZE], score[EDGEC_OUTPUT_SCORE_OUT_SIZE];
    static int8_t classes[EDGEC_OUTPUT_CLASSES_OUT_SIZE];
    uint32_t i;
    (void)scale;
    while (fread(image, 1, sizeof image, stdin) == sizeof image
           && fread(prior, 1, sizeof prior, stdin) == sizeof prior) {
        /* the copying API ... */
        if (edgec_model_run(image, prior, boxes, score, classes) != 0) return 1;
        fwrite(boxes, 1, sizeof boxes, stdout);
        fwrite(score, 1, sizeof score, stdout);
        fwrite(classes, 1, sizeof classes, stdout);
        /* ... and the slots, which must give the same bytes */
        memcpy(edgec_model_input_slot(EDGEC_INPUT_IMAGE_INDEX), image, sizeof image);
        memcpy(edgec_model_input_slot(EDGEC_INPUT_PRIOR_INDEX), prior, sizeof prior);
        if (edgec_model_invoke() != 0) return 2;
        if (memcmp(edgec_model_output_slot(0), boxes, sizeof boxes) != 0
            || memcmp(edgec_model_output_slot(1), score, sizeof score) != 0
            || memcmp(edgec_model_output_slot(2), classes, sizeof classes) != 0) return 3;
    }
    for (i = 0; i < 3; i++) {
        if (edgec_model_output_bytes(i) == 0 || edgec_model_output_slot(i) == NULL) return 4;
    }
    if (edgec_model_input_slot(2) != NULL || edgec_model_output_bytes(3) != 0) return 5;
    return 0;
}
"""


def test_c_api_exposes_every_buffer_on_the_host(detection, tmp_path):
    src = detection / "net" / "src"
    header = (src / "edgec_model.h").read_text()
    assert "int edgec_model_run(const int8_t *in_image, const int8_t *in_prior, int8_t " \
           "*out_boxes_out, int8_t *out_score_out, int8_t *out_classes_out);" in header
    assert "EDGEC_INPUT_SIZE" not in header  # the short names are for single-I/O models
    (tmp_path / "main.c").write_text(_HOST_MAIN)
    exe = tmp_path / "model"
    subprocess.run(["gcc", *CFLAGS, "-I", str(src), *map(str, sorted(src.glob("*.c"))),
                    str(tmp_path / "main.c"), "-o", str(exe)], check=True)
    batches = _int8_batches(5, seed=3)
    stdin = np.concatenate([check.to_bytes(b) for b in batches.values()], axis=1).tobytes()
    run = subprocess.run([str(exe)], input=stdin, capture_output=True, check=True)
    got = check.unpack_outputs(np.frombuffer(run.stdout, np.int8).reshape(5, -1),
                               json.loads((detection / "net" / "model.json").read_text())
                               ["io"]["outputs"])
    program = golden_io.load_program(detection / "net" / "golden.npz")
    io = json.loads((detection / "net" / "model.json").read_text())["io"]
    want = check.golden_all(program, io, list(batches.values()))
    for g, w in zip(got, want):
        assert g.dtype == np.int8 and np.array_equal(g, w)


def test_edgec_run_npz_round_trip_equals_litert(detection, tmp_path):
    from edgec.toolchain.litert_ref import run_litert
    x = _int8_batches(4, seed=9)
    np.savez(tmp_path / "x.npz", prior=x["prior"], image=x["image"])  # keyed, any order
    assert edgec("run", detection / "net", "--input", tmp_path / "x.npz",
                 "--output", tmp_path / "y.npz") == 0
    with np.load(tmp_path / "y.npz") as y:
        assert list(y.files) == list(OUTPUTS)  # the model's order
        got = {k: y[k] for k in y.files}
    want = run_litert(detection / "det.tflite", [x["image"], x["prior"]])
    for (name, shape), w in zip(OUTPUTS.items(), want):
        assert got[name].shape == (4, *shape[1:]) and got[name].dtype == np.int8
        assert np.array_equal(got[name], w), name
    # one sample without its batch axis is a batch of one
    np.savez(tmp_path / "one.npz", image=x["image"][2], prior=x["prior"][2])
    assert edgec("run", detection / "net", "-i", tmp_path / "one.npz",
                 "-o", tmp_path / "one_y.npz") == 0
    with np.load(tmp_path / "one_y.npz") as y:
        assert all(np.array_equal(y[k], got[k][2:3]) for k in OUTPUTS)


def test_edgec_run_bad_inputs_are_one_line_errors(detection, tmp_path, capsys):
    x = _int8_batches(2, seed=1)
    np.save(tmp_path / "x.npy", x["image"])
    np.savez(tmp_path / "missing.npz", image=x["image"])
    np.savez(tmp_path / "extra.npz", **x, mask=x["image"])
    np.savez(tmp_path / "shape.npz", image=x["image"], prior=x["prior"][:, :, :, :5])
    np.savez(tmp_path / "count.npz", image=x["image"], prior=x["prior"][:1])
    cases = [("x.npy", "y.npz", ["2 inputs", "'image' (N, 10, 10, 3)", "'prior' (N, 10, 10, 6)"]),
             ("missing.npz", "y.npz", ["no array 'prior'", "(N, 10, 10, 6)"]),
             ("extra.npz", "y.npz", ["'mask'", "no model input"]),
             ("shape.npz", "y.npz", ["'prior'", "(2, 10, 10, 5)", "(N, 10, 10, 6)"]),
             ("count.npz", "y.npz", ["different numbers of samples"]),
             ("missing.npz", "y.npy", ["3 outputs", ".npz"])]
    for given, out, words in cases:
        rc = edgec("run", detection / "net", "-i", tmp_path / given, "-o", tmp_path / out)
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and err[0].startswith("edgec: error: "), (given, err)
        assert all(w in err[0] for w in words), (given, err[0])
        assert not (tmp_path / out).exists()


def test_edgec_test_takes_inputs_keyed_by_name(detection, tmp_path, capsys):
    np.savez(tmp_path / "cases.npz", **_int8_batches(3, seed=4))
    rc = edgec("test", detection / "net", "--inputs", tmp_path / "cases.npz",
               "--json", tmp_path / "r.json")
    assert rc == 0, capsys.readouterr()
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["passed"] and doc["samples"] == 3
    checked = [c["name"] for c in doc["checks"] if c["status"] == "pass"]
    assert all(any(f"output '{n}' matches" in c for c in checked) for n in OUTPUTS)
    np.savez(tmp_path / "labelled.npz", **_int8_batches(3, seed=4), y=np.arange(3))
    rc = edgec("test", detection / "net", "--inputs", tmp_path / "labelled.npz")
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "3 outputs" in err[0]


class TwoHeads(nn.Module):
    """A shared conv trunk, a 1x1 conv head (a map) and a pooled linear head (a vector)."""

    def __init__(self):
        super().__init__()
        self.trunk = nn.Sequential(*_conv_bn(3, 8), nn.ReLU(), nn.MaxPool2d(2))
        self.seg = nn.Conv2d(8, 3, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        t = self.trunk(x)
        return self.seg(t), self.fc(torch.flatten(self.pool(t), 1))


def test_onnx_model_with_two_outputs_through_ptq(tmp_path):
    shape = (1, 3, 12, 12)
    model = _init(TwoHeads(), 3)
    torch.onnx.export(model, (torch.zeros(shape),), str(tmp_path / "two.onnx"),
                      input_names=["x"], output_names=["seg", "cls"], dynamo=False)
    np.save(tmp_path / "calib.npy", calib_like(shape, 32, seed=1))
    assert edgec("compile", tmp_path / "two.onnx", "--calib", tmp_path / "calib.npy",
                 "-o", tmp_path / "net") == 0
    rep = json.loads((tmp_path / "net" / "report.json").read_text())
    chk = rep["check"]
    assert chk["mismatches"] == 0 and chk["samples"] >= 16
    assert [o["name"] for o in chk["outputs"]] == ["seg", "cls"]
    assert rep["fidelity"]["cosine_min"] >= 0.98  # both heads agree with onnxruntime
    io = json.loads((tmp_path / "net" / "model.json").read_text())["io"]
    assert [(s["name"], s["source_shape"]) for s in io["outputs"]] == \
        [("seg", [1, 3, 6, 6]), ("cls", [1, 4])]
    header = (tmp_path / "net" / "src" / "edgec_model.h").read_text()
    assert "int edgec_model_run(const int8_t *in_x, int8_t *out_seg, int8_t *out_cls);" \
        in header
