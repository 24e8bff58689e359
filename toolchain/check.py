"""Proof on every build: the firmware's int8 output against the golden model, and the
golden model's dequantized output against the float source model."""
from __future__ import annotations

import numpy as np

from .errors import CheckError
from .golden import run_program
from .ir import Graph
from .lower.program import Program

NCHW_TO_NHWC = (0, 2, 3, 1)
NHWC_TO_NCHW = (0, 3, 1, 2)


def io_spec(qgraph: Graph) -> dict:
    """What a user of the compiled model needs to feed and read it (saved as model.json)."""
    def one(name: str) -> dict:
        t = qgraph.tensors[name]
        layout = qgraph.io_layout.get(name, "")
        shape = tuple(t.shape)
        src = tuple(shape[i] for i in NHWC_TO_NCHW) if layout == "NCHW" else shape
        return {"name": name, "shape": list(shape), "source_shape": list(src),
                "source_layout": layout or "as-is", "dtype": t.dtype,
                "scale": float(t.quant.scale), "zero_point": int(t.quant.zero_point),
                "bytes": t.nbytes}
    return {"inputs": [one(n) for n in qgraph.inputs],
            "outputs": [one(n) for n in qgraph.outputs]}


def to_model_layout(x: np.ndarray, spec: dict) -> np.ndarray:
    """(N, *source shape without batch) -> (N, *NHWC shape without batch)."""
    if spec["source_layout"] == "NCHW":
        return np.transpose(x, NCHW_TO_NHWC)
    return x


def to_source_layout(y: np.ndarray, spec: dict) -> np.ndarray:
    if spec["source_layout"] == "NCHW":
        return np.transpose(y, NHWC_TO_NCHW)
    return y


def quantize_input(x: np.ndarray, spec: dict) -> np.ndarray:
    q = np.round(x / spec["scale"]) + spec["zero_point"]
    return np.clip(q, -128, 127).astype(np.int8)


def dequantize(q: np.ndarray, spec: dict) -> np.ndarray:
    return ((q.astype(np.float32) - spec["zero_point"]) * spec["scale"]).astype(np.float32)


def test_inputs(io: dict, samples: np.ndarray, k: int, seed: int) -> np.ndarray:
    """k calibration samples (the data's own range) and k uniform int8 tensors (every code)."""
    spec = io["inputs"][0]
    shape = tuple(spec["shape"])
    real = quantize_input(to_model_layout(samples[:k], spec), spec).reshape(-1, *shape[1:])
    rng = np.random.default_rng(seed)
    noise = rng.integers(-128, 128, size=(k, *shape[1:]), dtype=np.int64).astype(np.int8)
    return np.concatenate([real, noise])


def golden_outputs(program: Program, io: dict, inputs: np.ndarray) -> np.ndarray:
    """Run the golden model per sample: (N, *in NHWC) int8 -> (N, *out NHWC) int8."""
    name_in, name_out = io["inputs"][0]["name"], io["outputs"][0]["name"]
    outs = [run_program(program, {name_in: x[None]})[name_out] for x in inputs]
    return np.stack([o.reshape(io["outputs"][0]["shape"][1:]) for o in outs])


def compare(golden: np.ndarray, emulated: np.ndarray) -> dict:
    g = golden.reshape(len(golden), -1).astype(np.int32)
    e = emulated.reshape(len(emulated), -1).astype(np.int32)
    diff = np.abs(g - e)
    return {"reference": "edgec golden model (NumPy int8)", "samples": int(len(g)),
            "mismatches": int(np.count_nonzero(diff)), "max_abs_diff": int(diff.max(initial=0))}


def mismatch_error(verdict: dict) -> CheckError:
    return CheckError(
        f"firmware output differs from the golden model: {verdict['mismatches']} values over "
        f"{verdict['samples']} samples (max abs diff {verdict['max_abs_diff']}); this is an "
        f"edgec bug, please report it with the model")


def float_agreement(source, program: Program, io: dict, samples: np.ndarray,
                    n: int = 16) -> dict:
    """Cosine similarity of the dequantized int8 output with the float source model."""
    import onnxruntime as ort
    sess = ort.InferenceSession(source.onnx.SerializeToString(),
                                providers=["CPUExecutionProvider"])
    in_name = sess.get_inputs()[0].name
    spec_in, spec_out = io["inputs"][0], io["outputs"][0]
    xs = samples[:n].astype(np.float32)
    cosines = []
    for x in xs:
        ref = sess.run(None, {in_name: x[None]})[0].ravel()
        q = quantize_input(to_model_layout(x[None], spec_in), spec_in)
        out = golden_outputs(program, io, q)[0]
        got = to_source_layout(dequantize(out, spec_out)[None], spec_out).ravel()
        denom = np.linalg.norm(ref) * np.linalg.norm(got)
        cosines.append(float(ref @ got / denom) if denom > 0 else float(np.allclose(ref, got)))
    return {"reference": "float source model (onnxruntime)", "samples": len(cosines),
            "cosine_min": min(cosines), "cosine_mean": float(np.mean(cosines))}
