"""C code generation: a lowered Program + its memory Plan -> a drop-in folder of C sources.

`emit_sources` writes edgec_model.h (the API), edgec_model.c (constant tables, one params
struct per layer, the arena and the layer sequence), edgec_kernels.h and exactly the
runtime_c kernel sources (and the helper headers they include) that the model calls, flat
in one folder. All C text lives in jinja2 templates (codegen/templates); this module only
prepares values. Output is deterministic: same inputs, same bytes.
"""
from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import numpy as np

import edgec
from edgec import runtime_c

from ..toolchain.errors import EdgecError
from ..toolchain.lower.program import ConstArray, FieldValue, KernelCall, Program
from ..toolchain.plan.arena import Plan
from ..toolchain.plan.patch import stripe_source, unique_const_bytes

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
RUNTIME_DIR = Path(runtime_c.__file__).resolve().parent
KERNELS_DIR = RUNTIME_DIR / "kernels" / "ref"
OPT_KERNELS_DIR = RUNTIME_DIR / "kernels" / "opt"
INCLUDE_DIR = RUNTIME_DIR / "include"
RUNTIME_DIRS = (KERNELS_DIR, OPT_KERNELS_DIR, INCLUDE_DIR)

# Kernel function -> the runtime_c/kernels/ref source that defines it.
KERNEL_SOURCES: dict[str, str] = {
    "edgec_conv2d_s8": "conv2d_s8.c",
    "edgec_depthwise_conv2d_s8": "depthwise_conv2d_s8.c",
    "edgec_fully_connected_s8": "fully_connected_s8.c",
    "edgec_fully_connected_first_s8": "fully_connected_partial_s8.c",
    "edgec_fully_connected_partial_s8": "fully_connected_partial_s8.c",
    "edgec_fully_connected_finish_s8": "fully_connected_partial_s8.c",
    "edgec_mean_first_s8": "mean_partial_s8.c",
    "edgec_mean_partial_s8": "mean_partial_s8.c",
    "edgec_mean_finish_s8": "mean_partial_s8.c",
    "edgec_add_s8": "add_s8.c",
    "edgec_max_pool2d_s8": "pooling_s8.c",
    "edgec_avg_pool2d_s8": "pooling_s8.c",
    "edgec_mean_s8": "mean_s8.c",
    "edgec_softmax_s8": "softmax_s8.c",
    "edgec_softmax_s8_s16": "softmax_s8.c",
    "edgec_requantize_s8": "requantize_s8.c",
    "edgec_mul_s8": "mul_s8.c",
    "edgec_lut_s8": "lut_s8.c",
    "edgec_hard_swish_s8": "hard_swish_s8.c",
    "edgec_leaky_relu_s8": "leaky_relu_s8.c",
    "edgec_quantize_f32_s8": "quantize_f32.c",
    "edgec_dequantize_s8_f32": "dequantize_f32.c",
    "edgec_pad_s8": "pad_s8.c",
    "edgec_transpose_s8": "transpose_s8.c",
    "edgec_concat_s8": "concat_s8.c",
    "edgec_resize_nearest_s8": "resize_nearest_s8.c",
    "edgec_requantize_s8_s16": "quantize_s16.c",
    "edgec_requantize_s16_s8": "quantize_s16.c",
    "edgec_requantize_s16_s16": "quantize_s16.c",
    "edgec_quantize_f32_s16": "quantize_f32.c",
    "edgec_dequantize_s16_f32": "dequantize_f32.c",
    "edgec_fully_connected_s16": "fully_connected_s16.c",
    "edgec_add_s16": "add_s16.c",
    "edgec_mul_s16": "mul_s16.c",
    "edgec_conv2d_s16": "conv2d_s16.c",
    "edgec_batch_matmul_s16": "batch_matmul_s16.c",
    "edgec_softmax_s16": "softmax_s16.c",
    "edgec_strided_slice_s8": "strided_slice_s8.c",
    "edgec_add_const_s8": "add_s8.c",
    "edgec_mul_const_s8": "mul_s8.c",
    "edgec_batch_matmul_s8": "batch_matmul_s8.c",
    "edgec_batch_matmul_s16_s8": "batch_matmul_s8.c",
    "edgec_layer_norm_s8": "layer_norm_s8.c",
    "edgec_constant_s8": "constant_s8.c",
    "edgec_attention_s8": "attention_s8.c",
    "edgec_mlp_s8": "mlp_s8.c",
    # optimized variants (runtime_c/kernels/opt), chosen by toolchain/lower/select.py
    "edgec_conv2d_1x1_s8": "conv2d_gemm_s8.c",
    "edgec_conv2d_1x1_fast_s8": "conv2d_gemm_s8.c",
    "edgec_conv2d_im2col_s8": "conv2d_gemm_s8.c",
    "edgec_conv2d_im2col_fast_s8": "conv2d_gemm_s8.c",
    "edgec_depthwise_conv2d_opt_s8": "depthwise_conv2d_planar_s8.c",
    "edgec_depthwise_conv2d_3x3_s8": "depthwise_conv2d_planar_s8.c",
    "edgec_fully_connected_opt_s8": "fully_connected_opt_s8.c",
    "edgec_fully_connected_fast_s8": "fully_connected_opt_s8.c",
    "edgec_add_lut_s8": "add_lut_s8.c",
    "edgec_mul_opt_s8": "mul_opt_s8.c",
    "edgec_max_pool2d_opt_s8": "pooling_opt_s8.c",
    "edgec_avg_pool2d_opt_s8": "pooling_opt_s8.c",
    "edgec_mean_opt_s8": "pooling_opt_s8.c",
    "edgec_attention_opt_s8": "attention_opt_s8.c",
    "edgec_layer_norm_opt_s8": "layer_norm_opt_s8.c",
    "edgec_fully_connected_rows_s8": "tokens_opt_s8.c",
    "edgec_fully_connected_rows_fast_s8": "tokens_opt_s8.c",
    "edgec_mlp_opt_s8": "tokens_opt_s8.c",
    "edgec_mlp_fast_s8": "tokens_opt_s8.c",
}
# Kernels declared outside edgec_kernels.h: the header edgec_model.c must also include.
KERNEL_HEADERS: dict[str, str] = {
    k: "edgec_kernels_opt.h" for k, src in KERNEL_SOURCES.items()
    if (OPT_KERNELS_DIR / src).is_file()
}

META_KEYS = ("model", "model_sha256", "target", "command")
VALUES_PER_LINE = {"int8_t": 16, "int16_t": 16, "int32_t": 8, "int64_t": 6}
_INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.MULTILINE)


# ---------------------------------------------------------------------------------------
# Formatting helpers (values -> C text)
# ---------------------------------------------------------------------------------------

def c_int(v: int) -> str:
    v = int(v)
    if v == -(1 << 31):
        return "(-2147483647 - 1)"
    if not -(1 << 31) <= v < (1 << 31):
        raise EdgecError(f"value {v} does not fit a 32-bit C int field")
    return str(v)


def c_macro_int(v: int) -> str:
    """An integer for a #define: negative values parenthesized."""
    text = c_int(v)
    return f"({text})" if text.startswith("-") else text


def c_float(v: float) -> str:
    """A float32 value as a C float literal that reads back to the same float32."""
    text = f"{float(np.float32(v)):.9g}"
    if not any(ch in text for ch in ".en"):
        text += ".0"
    return text + "f"


def c_identifier(text: str, max_len: int = 40) -> str:
    ident = re.sub(r"[^0-9A-Za-z_]", "_", text).strip("_") or "node"
    return ident[:max_len].rstrip("_") or "node"


def c_comment(text: str) -> str:
    """Text safe inside a /* */ comment (and on one line)."""
    return str(text).replace("*/", "* /").replace("/*", "/ *").replace("\n", " ")


def c_int64(v: int) -> str:
    """An int64_t table entry (16x8 bias): a long long literal beyond int32."""
    v = int(v)
    if -(1 << 31) < v < (1 << 31):
        return str(v)
    if not -(1 << 63) < v < (1 << 63):
        raise EdgecError(f"value {v} does not fit a 64-bit C integer")
    return f"{v}LL" if v > 0 else f"(-{-v - 1}LL - 1)"


def array_lines(data: np.ndarray, per_line: int) -> list[str]:
    fmt = c_int64 if np.asarray(data).dtype == np.int64 else c_int
    values = [fmt(v) for v in np.asarray(data).reshape(-1).tolist()]
    width = max((len(v) for v in values), default=1)
    lines = []
    for i in range(0, len(values), per_line):
        chunk = values[i:i + per_line]
        lines.append(", ".join(v.rjust(width) for v in chunk) + ",")
    return lines


# ---------------------------------------------------------------------------------------
# Template context
# ---------------------------------------------------------------------------------------

@dataclass
class _IO:
    role: str
    index: int  # position among the model's inputs (outputs)
    macro: str  # EDGEC_INPUT_<NAME> / EDGEC_OUTPUT_<NAME>
    param: str  # its edgec_model_run parameter: in_<name> / out_<name>
    name: str
    shape: tuple[int, ...]
    size: int  # elements
    nbytes: int
    offset: int
    ctype: str  # "int8_t" ("int16_t" in a 16x8 model), or "float" for float I/O
    scale_literal: str  # "" for float I/O
    zero_point: str
    layout_doc: str
    named_dims: list[tuple[str, int]]

    @property
    def suffixes(self) -> list[str]:
        """Its macros' names after the prefix, in the header's order."""
        return (["SIZE", "BYTES", "RANK"] + [f"DIM_{i}" for i in range(len(self.shape))]
                + [f"SHAPE_{label}" for label, _ in self.named_dims]
                + (["SCALE", "ZERO_POINT"] if self.scale_literal else []))


def io_identifiers(names: list[str]) -> list[str]:
    """Upper-case C identifiers for tensor names, distinct, deterministic: the sanitized
    name, with _2, _3 ... after a repeat (in the model's order)."""
    out: list[str] = []
    for name in names:
        base = c_identifier(name).upper()
        ident, k = base, 2
        while ident in out:
            ident, k = f"{base}_{k}", k + 1
        out.append(ident)
    return out


def _io_context(program: Program, plan: Plan, name: str, role: str, index: int = 0,
                ident: str = "") -> _IO:
    graph = program.graph
    t = graph.tensors[name]
    if not ((t.dtype in ("int8", "int16") and t.quant is not None) or t.dtype == "float32"):
        raise EdgecError(f"model {role} '{name}' must be an int8 (or 16x8 int16) quantized "
                         f"or a float32 tensor, got {t.dtype}")
    if name not in plan.offsets:
        raise EdgecError(f"the memory plan has no offset for model {role} '{name}'")
    shape = tuple(int(d) for d in t.shape)
    if len(shape) == 4:
        labels = ("N", "H", "W", "C")
        layout = "NHWC [" + ", ".join(f"{k}={d}" for k, d in zip(labels, shape)) + "]"
        named = list(zip(labels, shape))
    elif len(shape) == 2:
        layout = f"[N={shape[0]}, C={shape[1]}]"
        named = [("N", shape[0]), ("C", shape[1])]
    else:
        layout = "shape [" + ", ".join(str(d) for d in shape) + "]"
        named = []
    src_layout = graph.io_layout.get(name, "")
    if src_layout and src_layout != "NHWC" and len(shape) == 4:
        layout += f" (the source model's {src_layout} tensor, transposed to NHWC)"
    quantized = t.dtype in ("int8", "int16")
    prefix = "in" if role == "input" else "out"
    return _IO(role=role.capitalize(), index=index, macro=f"EDGEC_{role.upper()}_{ident}",
               param=f"{prefix}_{ident.lower()}", name=c_comment(name),
               shape=shape, size=int(np.prod(shape, dtype=np.int64)), nbytes=t.nbytes,
               offset=int(plan.offsets[name]), ctype=f"{t.dtype}_t" if quantized else "float",
               scale_literal=c_float(float(np.asarray(t.quant.scale).reshape(-1)[0]))
               if quantized else "",
               zero_point=c_macro_int(int(np.asarray(t.quant.zero_point).reshape(-1)[0]))
               if quantized else "",
               layout_doc=layout, named_dims=named)


def _field_value(value: FieldValue, array_ident: str) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, ConstArray):
        return array_ident
    if isinstance(value, tuple):
        return "{" + ", ".join(c_int(v) for v in value) + "}"
    if isinstance(value, float):
        return c_float(value)
    if isinstance(value, (int, np.integer)):
        return c_int(int(value))
    raise EdgecError(f"cannot emit a field of type {type(value).__name__}")


def _layer_context(index: int, call_index: int, call: KernelCall, program: Program,
                   plan: Plan, shared: dict | None = None) -> dict[str, Any]:
    """Layer `index` of the emitted sequence: program.calls[call_index], in plan order.
    `shared`: tables already emitted for other stripes of the same layer (plan/patch.py),
    {(layer, field, ctype, bytes): identifier}; a stripe reuses an equal table."""
    graph = program.graph
    ident = f"edgec_l{index:03d}_{c_identifier(call.name)}"
    arrays, fields = [], []
    for fname, value in call.fields.items():
        array_ident = f"{ident}_{fname}"
        if isinstance(value, ConstArray):
            data = np.asarray(value.data).reshape(-1)
            key = (stripe_source(call.name), fname, value.ctype, data.dtype.str,
                   data.tobytes())
            if shared is not None and key in shared:
                array_ident = shared[key]
            else:
                if shared is not None and key[0] != call.name:
                    shared[key] = array_ident
                arrays.append({"ident": array_ident, "ctype": value.ctype,
                               "size": max(int(data.size), 1),
                               "lines": array_lines(data, VALUES_PER_LINE.get(value.ctype, 8))})
        fields.append((fname, _field_value(value, array_ident)))

    def tensor_arg(name: str) -> str:
        if name not in plan.offsets:
            raise EdgecError(f"the memory plan has no offset for tensor '{name}' "
                             f"(layer {index}, node '{call.name}')")
        if graph.tensors[name].dtype == "float32":  # the float I/O kernels take float *
            return f"(float *)(void *)(edgec_arena + {int(plan.offsets[name])})"
        if graph.tensors[name].dtype in ("int32", "int16"):  # accumulators; int16 tensors
            ctype = graph.tensors[name].dtype + "_t"
            return f"({ctype} *)(void *)(edgec_arena + {int(plan.offsets[name])})"
        return f"edgec_arena + {int(plan.offsets[name])}"

    input_table = [tensor_arg(t) for t in call.inputs] if call.input_array else []
    args = ([f"{ident}_inputs"] if call.input_array else [tensor_arg(t) for t in call.inputs]) \
        + [tensor_arg(t) for t in call.outputs]
    io_lines = []
    for role, names in (("in", call.inputs), ("out", call.outputs)):
        for t in names:
            shape = "x".join(str(d) for d in graph.tensors[t].shape)
            io_lines.append(f"{role:<4}'{c_comment(t)}' [{shape}] @ arena + "
                            f"{int(plan.offsets[t])}")
    if call.scratch_bytes > 0:
        if call_index not in plan.scratch_offsets:
            raise EdgecError(f"the memory plan has no scratch buffer for layer {index} "
                             f"(node '{call.name}')")
        offset = int(plan.scratch_offsets[call_index])
        args.append(f"edgec_arena + {offset}")
        io_lines.append(f"scratch {call.scratch_bytes} bytes @ arena + {offset}")
    if call.macs:
        io_lines.append(f"{call.macs} MACs, {call.const_bytes} bytes of constants")
    return {"index": index, "ident": ident, "node": c_comment(call.name),
            "op": call.op, "kernel": call.kernel, "params_type": call.params_type,
            "arrays": arrays, "fields": fields, "args": args, "io_lines": io_lines,
            "input_table": input_table if call_index not in plan.zero_copy else [],
            "view": call.view or call_index in plan.zero_copy,
            "zero_copy": call_index in plan.zero_copy}


def _meta_lines(meta: dict) -> list[str]:
    lines = []
    for key in META_KEYS:
        if meta.get(key) not in (None, ""):
            lines.append(f"{key}: {c_comment(meta[key])}")
    for key in sorted(k for k in meta if k not in META_KEYS):
        lines.append(f"{key}: {c_comment(meta[key])}")
    return lines


def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
                              undefined=jinja2.StrictUndefined, trim_blocks=True,
                              lstrip_blocks=True, keep_trailing_newline=True,
                              autoescape=False)


# ---------------------------------------------------------------------------------------
# Runtime sources
# ---------------------------------------------------------------------------------------

def _find_runtime_file(name: str) -> Path:
    for folder in RUNTIME_DIRS:
        path = folder / name
        if path.is_file():
            return path
    raise EdgecError(f"runtime_c file '{name}' not found (broken edgec install?)")


def runtime_files(kernels: list[str]) -> list[Path]:
    """The kernel sources defining `kernels`, edgec_kernels.h and every header they
    include from runtime_c (transitively), in a deterministic order."""
    sources = []
    for k in kernels:
        if k not in KERNEL_SOURCES:
            raise EdgecError(f"no runtime_c source for kernel '{k}'")
        if KERNEL_SOURCES[k] not in sources:
            sources.append(KERNEL_SOURCES[k])
    wanted = ["edgec_kernels.h"] + sorted(sources)
    seen: dict[str, Path] = {}
    while wanted:
        name = wanted.pop(0)
        if name in seen:
            continue
        path = _find_runtime_file(name)
        seen[name] = path
        for inc in _INCLUDE_RE.findall(path.read_text()):
            if inc not in seen and any((d / inc).is_file() for d in RUNTIME_DIRS):
                wanted.append(inc)
    return [seen[n] for n in sorted(seen)]


# ---------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------

def emit_sources(program: Program, plan: Plan, out_dir: Path, meta: dict) -> list[Path]:
    """Write the model's C sources into out_dir; return the written paths (sorted)."""
    graph = program.graph
    if not graph.inputs or not graph.outputs:
        raise EdgecError(f"the model has {len(graph.inputs)} inputs and {len(graph.outputs)} "
                         f"outputs; it needs at least one of each")
    for role, names in (("inputs", graph.inputs), ("outputs", graph.outputs)):
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise EdgecError(f"the model lists tensor '{repeated[0]}' twice among its {role}; "
                             f"give each {role[:-1]} its own tensor")
    if not program.calls:
        raise EdgecError("the model has no layers to generate")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    # Calls in the planner's order: its offsets are only valid for that order.
    order = plan.execution_order(len(program.calls))
    shared: dict = {}
    layers = [_layer_context(step, i, program.calls[i], program, plan, shared)
              for step, i in enumerate(order)]
    kernels = [c.kernel for i, c in enumerate(program.calls)
               if not c.view and i not in plan.zero_copy]
    inputs = [_io_context(program, plan, n, "input", i, ident) for i, (n, ident)
              in enumerate(zip(graph.inputs, io_identifiers(graph.inputs)))]
    outputs = [_io_context(program, plan, n, "output", i, ident) for i, (n, ident)
               in enumerate(zip(graph.outputs, io_identifiers(graph.outputs)))]
    single = len(inputs) == 1 and len(outputs) == 1
    context = {
        "version": edgec.__version__,
        "meta_lines": _meta_lines(meta or {}),
        "inputs": inputs,
        "outputs": outputs,
        "single": single,
        "input": inputs[0],
        "output": outputs[0],
        "params": [f"const {io.ctype} *{io.param}" for io in inputs]
        + [f"{io.ctype} *{io.param}" for io in outputs],
        "arena_size": int(plan.arena_bytes),
        "num_layers": len(program.calls),
        "total_macs": sum(c.macs for c in program.calls),
        "const_bytes": unique_const_bytes(program),
        "layers": layers,
        "extra_headers": sorted({KERNEL_HEADERS[k] for k in kernels if k in KERNEL_HEADERS}),
    }
    env = _environment()
    written = []
    for template, filename in (("edgec_model.h.j2", "edgec_model.h"),
                               ("edgec_model.c.j2", "edgec_model.c")):
        path = out_dir / filename
        path.write_text(env.get_template(template).render(**context), encoding="utf-8")
        written.append(path)
    for src in runtime_files(kernels):
        dst = out_dir / src.name
        shutil.copyfile(src, dst)
        written.append(dst)
    return sorted(written)
