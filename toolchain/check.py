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


# The little-endian layout of each I/O dtype in the emulator's byte rows.
_WIRE = {"float32": "<f4", "int16": "<i2"}


def to_bytes(x: np.ndarray) -> np.ndarray:
    """(N, ...) model inputs (int8, int16 in a 16x8 model, or float32 for float I/O) ->
    (N, bytes) int8 rows, what the emulator sends to the firmware."""
    x = np.ascontiguousarray(x)
    if x.dtype.name in _WIRE:
        x = np.ascontiguousarray(x, _WIRE[x.dtype.name]).view(np.int8)
    return x.reshape(len(x), -1)


def from_bytes(raw: np.ndarray, spec: dict) -> np.ndarray:
    """Emulator output rows (N, bytes) int8 -> (N, elements) of the spec's dtype."""
    raw = np.ascontiguousarray(raw, dtype=np.int8)
    wire = _WIRE.get(spec["dtype"])
    return raw.view(wire).astype(spec["dtype"]) if wire else raw


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
    """Real values -> the input's integer dtype (int8, or int16 in a 16x8 model)."""
    info = np.iinfo(spec["dtype"] if spec["dtype"] == "int16" else "int8")
    q = np.round(x / spec["scale"]) + spec["zero_point"]
    return np.clip(q, info.min, info.max).astype(info.dtype)


def dequantize(q: np.ndarray, spec: dict) -> np.ndarray:
    return ((q.astype(np.float32) - spec["zero_point"]) * spec["scale"]).astype(np.float32)


def test_inputs(io: dict, samples: np.ndarray | None, k: int, seed: int) -> np.ndarray:
    """k samples of the user's data (its own range; int8 data as is) and k uniform int8
    tensors (every code); 2k uniform ones when there is no data. Single-input models."""
    return test_batches(io, samples, k, seed)[0]


def test_batches(io: dict, samples: np.ndarray | None, k: int,
                 seed: int) -> list[np.ndarray]:
    """test_inputs for every model input, in the model's order: one (N, *NHWC shape without
    batch) array each. User samples feed a single-input model only."""
    rng = np.random.default_rng(seed)
    if len(io["inputs"]) > 1:
        samples = None  # the user's samples are one model input's: see calibdata
    return [_test_batch(spec, samples, k, rng) for spec in io["inputs"]]


def _test_batch(spec: dict, samples: np.ndarray | None, k: int,
                rng: np.random.Generator) -> np.ndarray:
    shape = tuple(spec["shape"])
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
    if spec["dtype"] == "int16":  # a 16x8 model's int16 input: every int16 code range
        noise = rng.integers(-32768, 32768, size=noise.shape, dtype=np.int64).astype(np.int16)
    if samples is None:
        return noise
    real = to_model_layout(samples[:k], spec)
    if np.issubdtype(real.dtype, np.floating):
        real = quantize_input(real, spec)
    return np.concatenate([real.astype(noise.dtype).reshape(-1, *shape[1:]), noise])


def pack_inputs(batches: list[np.ndarray]) -> np.ndarray:
    """One (N, ...) array per model input -> (N, bytes) int8 rows, each sample's inputs
    back to back in the model's order: what the harness reads per inference."""
    return np.concatenate([to_bytes(b) for b in batches], axis=1)


def unpack_outputs(raw: np.ndarray, specs: list[dict]) -> list[np.ndarray]:
    """Emulator rows (N, bytes), each sample's outputs back to back in the model's order ->
    one (N, *NHWC shape without batch) array per output, in its dtype."""
    raw = np.ascontiguousarray(raw, dtype=np.int8).reshape(len(raw), -1)
    outs, at = [], 0
    for spec in specs:
        part = np.ascontiguousarray(raw[:, at:at + spec["bytes"]])
        at += spec["bytes"]
        outs.append(from_bytes(part, spec).reshape(len(raw), *spec["shape"][1:]))
    if at != raw.shape[1]:
        raise CheckError(f"the firmware returned {raw.shape[1]} bytes per sample, the model's "
                         f"outputs have {at}")
    return outs


def golden_all(program: Program, io: dict, batches: list[np.ndarray]) -> list[np.ndarray]:
    """The golden model per sample on every input: one (N, *out NHWC) array per output."""
    names_in = [s["name"] for s in io["inputs"]]
    per_sample = [run_program(program, {n: b[k][None] for n, b in zip(names_in, batches)})
                  for k in range(len(batches[0]))]
    return [np.stack([v[s["name"]].reshape(s["shape"][1:]) for v in per_sample])
            for s in io["outputs"]]


def golden_outputs(program: Program, io: dict, inputs: np.ndarray) -> np.ndarray:
    """Run the golden model per sample: (N, *in NHWC) -> (N, *out NHWC), int8 (float32
    for a model with float I/O). Single-input models; the first output."""
    return golden_all(program, io, [inputs])[0]


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


def compare_all(golden: list[np.ndarray], emulated: list[np.ndarray], io: dict,
                reference: str = "edgec golden model (NumPy int8)") -> dict:
    """compare() on every output; the totals, and per output when there are several."""
    parts = [compare(g, e, reference) for g, e in zip(golden, emulated)]
    result = {"reference": reference, "samples": parts[0]["samples"],
              "mismatches": sum(p["mismatches"] for p in parts),
              "max_abs_diff": max(p["max_abs_diff"] for p in parts)}
    if len(parts) > 1:
        result["outputs"] = [{"name": s["name"], "mismatches": p["mismatches"],
                              "max_abs_diff": p["max_abs_diff"]}
                             for s, p in zip(io["outputs"], parts)]
    return result


def verdict(program: Program, io: dict, inputs: np.ndarray | list[np.ndarray],
            emulated: np.ndarray, source) -> dict:
    """The firmware against the golden model, on every output; for an int8 .tflite also
    against LiteRT's reference kernels, the model's own definition of its numbers.
    `inputs`: one batch per model input (or the batch of a single-input model);
    `emulated` is the emulator's raw output rows (bytes)."""
    batches = [inputs] if isinstance(inputs, np.ndarray) else list(inputs)
    emulated = unpack_outputs(emulated, io["outputs"])
    result = compare_all(golden_all(program, io, batches), emulated, io)
    if source.quantized and source.tflite is not None and _litert_io(io, source):
        from .litert_ref import run_litert
        want = run_litert(source.tflite, _litert_order(batches, io, source))
        lite = compare_all(want, emulated, io, "LiteRT BUILTIN_REF (reference kernels)")
        result["litert"] = lite
        result["mismatches"] += lite["mismatches"]
        result["max_abs_diff"] = max(result["max_abs_diff"], lite["max_abs_diff"])
    return result


def _litert_order(batches: list[np.ndarray], io: dict, source) -> list[np.ndarray]:
    """Our input batches in LiteRT's input order: by name (the .tflite tensor names),
    else in the model's order."""
    from .litert_ref import io_details
    ins, _ = io_details(source.tflite)
    by_name = {s["name"]: b for b, s in zip(batches, io["inputs"])}
    if sorted(by_name) == sorted(d.name for d in ins):
        batches = [by_name[d.name] for d in ins]
    return [b.reshape(len(b), *d.shape[1:]) for b, d in zip(batches, ins)]


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
    """Cosine similarity of the dequantized int8 outputs with the float source model's
    (the smallest and the mean over samples and outputs). Single-input models."""
    spec_in, specs_out = io["inputs"][0], io["outputs"]
    xs = samples[:n].astype(np.float32)
    refs = ([[r] for r in source.float_reference(xs)] if len(specs_out) == 1
            else source.float_outputs(xs))
    cosines = []
    for x, ref_outs in zip(xs, refs):
        q = quantize_input(to_model_layout(x[None], spec_in), spec_in)
        outs = golden_all(program, io, [q])
        for ref, out, spec_out in zip(ref_outs, outs, specs_out):
            ref = np.asarray(ref).ravel()
            got = to_source_layout(dequantize(out[0], spec_out)[None], spec_out).ravel()
            denom = np.linalg.norm(ref) * np.linalg.norm(got)
            cosines.append(float(ref @ got / denom) if denom > 0
                           else float(np.allclose(ref, got)))
    engine = "onnxruntime" if source.onnx is not None else "LiteRT"
    return {"reference": f"float source model ({engine})", "samples": len(xs),
            "cosine_min": min(cosines), "cosine_mean": float(np.mean(cosines))}
