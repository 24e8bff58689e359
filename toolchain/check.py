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
    """What a user of the compiled model needs to feed and read it (saved as model.json).

    An int8 input/output carries its own scale and zero point. A float32 one (a .tflite
    model's own float I/O, quantized/dequantized inside the compiled model) carries those of
    the int8 tensor on the other side of its QUANTIZE / DEQUANTIZE, for information."""
    def one(name: str) -> dict:
        t = qgraph.tensors[name]
        layout = qgraph.io_layout.get(name, "")
        shape = tuple(t.shape)
        src = tuple(shape[i] for i in NHWC_TO_NCHW) if layout == "NCHW" else shape
        q = t.quant if t.dtype != "float32" else _boundary_quant(qgraph, name)
        return {"name": name, "shape": list(shape), "source_shape": list(src),
                "source_layout": layout or "as-is", "dtype": t.dtype,
                "scale": float(np.ravel(q.scale)[0]) if q is not None else None,
                "zero_point": int(np.ravel(q.zero_point)[0]) if q is not None else None,
                "bytes": t.nbytes}
    return {"inputs": [one(n) for n in qgraph.inputs],
            "outputs": [one(n) for n in qgraph.outputs]}


def _boundary_quant(qgraph: Graph, name: str):
    """The int8 quantization behind a float graph input (its QUANTIZE's output) or output
    (its DEQUANTIZE's input); None if there is none."""
    for node in qgraph.consumers(name):
        if node.op == "quantize":
            return qgraph.tensors[node.outputs[0]].quant
    node = qgraph.producer(name)
    if node is not None and node.op == "dequantize":
        return qgraph.tensors[node.inputs[0]].quant
    return None


def is_float(spec: dict) -> bool:
    return spec["dtype"] == "float32"


def to_bytes(x: np.ndarray) -> np.ndarray:
    """(N, ...) model inputs (int8, or float32 for float I/O) -> (N, bytes) int8 rows, what
    the emulator sends to the firmware."""
    x = np.ascontiguousarray(x)
    if x.dtype == np.float32:
        x = np.ascontiguousarray(x, "<f4").view(np.int8)
    return x.reshape(len(x), -1)


def from_bytes(raw: np.ndarray, spec: dict) -> np.ndarray:
    """Emulator output rows (N, bytes) int8 -> (N, elements) of the spec's dtype."""
    raw = np.ascontiguousarray(raw, dtype=np.int8)
    return raw.view("<f4").astype(np.float32) if is_float(spec) else raw


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


def test_inputs(io: dict, samples: np.ndarray | None, k: int, seed: int) -> np.ndarray:
    """k samples of the user's data (its own range; int8 data as is) and k uniform int8
    tensors (every code); 2k uniform ones when there is no data."""
    spec = io["inputs"][0]
    shape = tuple(spec["shape"])
    rng = np.random.default_rng(seed)
    n_noise = k if samples is not None else 2 * k
    noise = rng.integers(-128, 128, size=(n_noise, *shape[1:]), dtype=np.int64).astype(np.int8)
    if is_float(spec):
        # every int8 code of the model's own QUANTIZE, off its grid by up to half a step
        scale = spec["scale"] if spec["scale"] is not None else 1.0
        zp = spec["zero_point"] if spec["zero_point"] is not None else 0
        jitter = rng.uniform(-0.5, 0.5, size=noise.shape)
        noise = ((noise.astype(np.float64) - zp + jitter) * scale).astype(np.float32)
        if samples is None:
            return noise
        real = to_model_layout(np.asarray(samples[:k], np.float32), spec)
        return np.concatenate([real.reshape(-1, *shape[1:]), noise])
    if samples is None:
        return noise
    real = to_model_layout(samples[:k], spec)
    if np.issubdtype(real.dtype, np.floating):
        real = quantize_input(real, spec)
    return np.concatenate([real.astype(np.int8).reshape(-1, *shape[1:]), noise])


def golden_outputs(program: Program, io: dict, inputs: np.ndarray) -> np.ndarray:
    """Run the golden model per sample: (N, *in NHWC) -> (N, *out NHWC), int8 (float32
    for a model with float I/O)."""
    name_in, name_out = io["inputs"][0]["name"], io["outputs"][0]["name"]
    outs = [run_program(program, {name_in: x[None]})[name_out] for x in inputs]
    return np.stack([o.reshape(io["outputs"][0]["shape"][1:]) for o in outs])


def compare(golden: np.ndarray, emulated: np.ndarray,
            reference: str = "edgec golden model (NumPy int8)") -> dict:
    if np.issubdtype(golden.dtype, np.floating) or np.issubdtype(emulated.dtype, np.floating):
        # float outputs must be the same bits (NaN included); the difference is for reading
        g = np.ascontiguousarray(golden, np.float32).reshape(len(golden), -1)
        e = np.ascontiguousarray(emulated, np.float32).reshape(len(emulated), -1)
        with np.errstate(invalid="ignore"):
            diff = np.nan_to_num(np.abs(g.astype(np.float64) - e), nan=np.inf)
        return {"reference": reference, "samples": int(len(g)),
                "mismatches": int(np.count_nonzero(g.view(np.int32) != e.view(np.int32))),
                "max_abs_diff": float(diff.max(initial=0.0))}
    g = golden.reshape(len(golden), -1).astype(np.int32)
    e = emulated.reshape(len(emulated), -1).astype(np.int32)
    diff = np.abs(g - e)
    return {"reference": reference, "samples": int(len(g)),
            "mismatches": int(np.count_nonzero(diff)), "max_abs_diff": int(diff.max(initial=0))}


def verdict(program: Program, io: dict, inputs: np.ndarray, emulated: np.ndarray,
            source) -> dict:
    """The firmware against the golden model; for an int8 .tflite also against LiteRT's
    reference kernels, the model's own definition of its numbers. `emulated` is the
    emulator's raw output rows (bytes)."""
    emulated = from_bytes(emulated.reshape(len(emulated), -1), io["outputs"][0])
    result = compare(golden_outputs(program, io, inputs), emulated)
    if source.quantized and source.tflite is not None and _litert_io(io, source):
        from .litert_ref import run_litert
        want = run_litert(source.tflite, [inputs.reshape(len(inputs), *io["inputs"][0]["shape"][1:])])[0]
        lite = compare(want, emulated, "LiteRT BUILTIN_REF (reference kernels)")
        result["litert"] = lite
        result["mismatches"] += lite["mismatches"]
        result["max_abs_diff"] = max(result["max_abs_diff"], lite["max_abs_diff"])
    return result


def _litert_io(io: dict, source) -> bool:
    """The compiled model's I/O have the .tflite model's own dtypes (int8, or its float I/O
    with io="model"), so LiteRT can run the same inputs."""
    from .litert_ref import io_details
    ins, outs = io_details(source.tflite)
    return ([d.dtype for d in ins] == [t["dtype"] for t in io["inputs"]]
            and [d.dtype for d in outs] == [t["dtype"] for t in io["outputs"]])


def mismatch_error(verdict: dict) -> CheckError:
    return CheckError(
        f"firmware output differs from the golden model: {verdict['mismatches']} values over "
        f"{verdict['samples']} samples (max abs diff {verdict['max_abs_diff']}); this is an "
        f"edgec bug, please report it with the model")


def float_agreement(source, program: Program, io: dict, samples: np.ndarray,
                    n: int = 16) -> dict:
    """Cosine similarity of the dequantized int8 output with the float source model."""
    spec_in, spec_out = io["inputs"][0], io["outputs"][0]
    xs = samples[:n].astype(np.float32)
    cosines = []
    for x, ref in zip(xs, source.float_reference(xs)):
        ref = np.asarray(ref).ravel()
        q = quantize_input(to_model_layout(x[None], spec_in), spec_in)
        out = golden_outputs(program, io, q)[0]
        got = to_source_layout(dequantize(out, spec_out)[None], spec_out).ravel()
        denom = np.linalg.norm(ref) * np.linalg.norm(got)
        cosines.append(float(ref @ got / denom) if denom > 0 else float(np.allclose(ref, got)))
    engine = "onnxruntime" if source.onnx is not None else "LiteRT"
    return {"reference": f"float source model ({engine})", "samples": len(cosines),
            "cosine_min": min(cosines), "cosine_mean": float(np.mean(cosines))}
