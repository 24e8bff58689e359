"""Fuzz the compiler: mutated model files and mutated IR graphs through `edgec compile`
(up to emitting C, no build). The goal: every input is either compiled or rejected with an
EdgecError whose message is one line; never another exception, never a hang.

    .venv/bin/python benchmarks/fuzz.py --files 10000 [--seed 0] [--kinds tflite,onnx,pt2,ir]
                                        [--limit 20] [--crashes DIR] [--replay KIND:SEED:CASE]

prints the number of cases tried, accepted, rejected cleanly, and the failures: crashes (an
exception that is not an EdgecError, or a worker that died), hangs (over the per-case time
limit), and rejections whose message is not one line. Each failure prints its replay key.

Cases, all derived from (kind, seed index, case number), so any one can be replayed:
  tflite  the shared .tflite models, mutated: bit flips, interesting bytes/ints/floats
          written at random or at flatbuffer field positions (tensor shapes, quantization,
          operator inputs/options), truncations, splices, insertions, duplicated chunks
  onnx    small ONNX models built here, mutated as protobufs (dims, attributes, weights with
          NaN/inf, dangling names, op types, cycles) or as bytes
  pt2     a torch.export archive, its zip members mutated (or the whole file as bytes)
  ir      the IR of the int8 .tflite models (and a float ONNX model), mutated: zero, negative
          and huge dims, absurd strides/pads/kernels, NaN/inf/zero/negative scales, zero
          points out of range, wrong per-channel sizes, cycles, dangling tensor ids,
          duplicated writers, bad dtypes and op names; compiled through the same pipeline
          (toolchain/pipeline.compile_model) with the frontend replaced by the mutated graph

Cases run in a worker process (restarted after a hang or a death), with a soft time limit
in the worker (SIGALRM, which names where the case was stuck) and a hard one in the parent.
The worker's address space is capped (--mem-gb), so a case that allocates without bound
dies as a crash instead of taking the machine down.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import os
import random
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # also when loaded by the tests
from shared_data import models_dir  # noqa: E402

KINDS = ("tflite", "onnx", "pt2", "ir")
DEFAULT_WEIGHTS = {"tflite": 4, "onnx": 3, "pt2": 1, "ir": 4}
TFLITE_SEEDS = ("hello_world_int8", "hello_world_float", "micro_speech_quantized",
                "kws_dscnn_int8", "ad_fc_autoencoder_int8", "mnist_lstm_int8",
                "kws_dscnn_float32")
IR_SEEDS = ("hello_world_int8", "micro_speech_quantized", "kws_dscnn_int8", "onnx:0",
            "onnx:1")


# ---- seeds ---------------------------------------------------------------------------------

def onnx_seeds() -> list[bytes]:
    """Small float ONNX models covering most of the ONNX frontend's ops."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)

    def w(name, *shape):
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.3).astype(np.float32),
                                       name)

    def model(nodes, inits, inp, out, name):
        g = helper.make_graph(nodes, name, [helper.make_tensor_value_info(
            "x", TensorProto.FLOAT, inp)], [helper.make_tensor_value_info(
                "y", TensorProto.FLOAT, out)], inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="edgec-fuzz")
        m.ir_version = 8
        return m.SerializeToString()

    mk = helper.make_node
    a = model([
        mk("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], strides=[1, 1], name="conv1"),
        mk("BatchNormalization", ["c1", "s", "bb", "m", "v"], ["bn"], name="bn"),
        mk("Relu", ["bn"], ["r1"], name="relu"),
        mk("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
        mk("Conv", ["p1", "w2"], ["c2"], group=4, pads=[1, 1, 1, 1], name="dw"),
        mk("Add", ["c2", "p1"], ["a1"], name="res"),
        mk("Clip", ["a1", "lo", "hi"], ["cl"], name="relu6"),
        mk("AveragePool", ["cl"], ["ap"], kernel_shape=[2, 2], strides=[2, 2], name="avg"),
        mk("Flatten", ["ap"], ["f"], axis=1, name="flat"),
        mk("Gemm", ["f", "w3", "b3"], ["g"], transB=1, name="fc"),
        mk("Softmax", ["g"], ["y"], axis=-1, name="softmax"),
    ], [w("w1", 4, 3, 3, 3), w("b1", 4),
        numpy_helper.from_array(np.ones(4, np.float32), "s"), w("bb", 4), w("m", 4),
        numpy_helper.from_array(np.full(4, 1.5, np.float32), "v"), w("w2", 4, 1, 3, 3),
        numpy_helper.from_array(np.array(0, np.float32), "lo"),
        numpy_helper.from_array(np.array(6, np.float32), "hi"),
        w("w3", 5, 16), w("b3", 5)], [1, 3, 8, 8], [1, 5], "seed_a")
    b = model([
        mk("Pad", ["x", "pads"], ["pd"], mode="constant", name="pad"),
        mk("Conv", ["pd", "w1"], ["c1"], strides=[2, 2], name="conv"),
        mk("Sigmoid", ["c1"], ["sg"], name="sig"),
        mk("Mul", ["c1", "sg"], ["sw"], name="swish"),
        mk("Resize", ["sw", "", "scales"], ["up"], mode="nearest", name="up"),
        mk("Slice", ["up", "st", "en", "ax"], ["sl"], name="slice"),
        mk("Concat", ["sl", "sl"], ["cc"], axis=1, name="cat"),
        mk("Transpose", ["cc"], ["tr"], perm=[0, 1, 3, 2], name="tr"),
        mk("HardSwish", ["tr"], ["hs"], name="hs"),
        mk("LeakyRelu", ["hs"], ["lr"], alpha=0.1, name="lrelu"),
        mk("Tanh", ["lr"], ["th"], name="tanh"),
        mk("GlobalAveragePool", ["th"], ["gp"], name="gap"),
        mk("Reshape", ["gp", "shape"], ["rs"], name="reshape"),
        mk("MatMul", ["rs", "w2"], ["mm"], name="mm"),
        mk("Add", ["mm", "b2"], ["y"], name="bias"),
    ], [w("w1", 6, 2, 3, 3),
        numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads"),
        numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
        numpy_helper.from_array(np.array([0, 1], np.int64), "st"),
        numpy_helper.from_array(np.array([6, 8], np.int64), "en"),
        numpy_helper.from_array(np.array([1, 2], np.int64), "ax"),
        numpy_helper.from_array(np.array([1, 12], np.int64), "shape"),
        w("w2", 12, 3), w("b2", 3)], [1, 2, 7, 7], [1, 3], "seed_b")
    for blob in (a, b):
        onnx.checker.check_model(onnx.ModelProto.FromString(blob))
    return [a, b]


def pt2_seed(work: Path) -> bytes:
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)).eval()
    ep = torch.export.export(model, (torch.zeros(1, 3, 8, 8),))
    path = work / "seed.pt2"
    torch.export.save(ep, str(path))
    return path.read_bytes()


class Seeds:
    """Seed inputs, built on first use (a worker builds each once)."""

    def __init__(self, work: Path):
        self.work = work
        self._files: dict[str, list[tuple[str, bytes]]] = {}
        self._graphs: dict[str, tuple[object, bool]] = {}

    def files(self, kind: str) -> list[tuple[str, bytes]]:
        if kind not in self._files:
            if kind == "tflite":
                root = models_dir()
                self._files[kind] = [(n, (root / f"{n}.tflite").read_bytes())
                                     for n in TFLITE_SEEDS if (root / f"{n}.tflite").is_file()]
            elif kind == "onnx":
                self._files[kind] = [(f"onnx_{i}", b) for i, b in enumerate(onnx_seeds())]
            elif kind == "pt2":
                self._files[kind] = [("seed_pt2", pt2_seed(self.work))]
        return self._files[kind]

    def graph(self, name: str):
        """(IR graph, quantized) of an IR seed."""
        if name not in self._graphs:
            if name.startswith("onnx:"):
                import onnx

                from edgec.toolchain.frontend.onnx import load_onnx
                from edgec.toolchain.passes import run_passes
                blob = self.files("onnx")[int(name[5:])][1]
                g = run_passes(load_onnx(onnx.ModelProto.FromString(blob)))
                self._graphs[name] = (g, False)
            else:
                from edgec.toolchain.frontend.tflite import load_tflite
                g = load_tflite(models_dir() / f"{name}.tflite")
                self._graphs[name] = (g, bool(g.meta.get("quantized")))
        return self._graphs[name]


# ---- byte mutations ------------------------------------------------------------------------

INTERESTING_I32 = (0, 1, -1, 2, 3, 7, 8, 16, 127, 128, 255, 256, -128, -129, 1000, 65535,
                   65536, 0x7FFFFFFF, -0x80000000, 0x40000000, 0x10000, 100000000)
INTERESTING_F32 = (0.0, -0.0, 1.0, -1.0, float("nan"), float("inf"), float("-inf"), 1e-45,
                   1e-38, 3.4e38, 1e-20, 1e20, 0.5, 2.0 ** -31, 2.0 ** 31)
INTERESTING_I64 = (0, -1, 1, 127, 128, -129, 2 ** 31, -2 ** 31 - 1, 2 ** 62, -2 ** 63)


def _put(data: bytearray, pos: int, raw: bytes) -> None:
    if 0 <= pos and pos + len(raw) <= len(data):
        data[pos:pos + len(raw)] = raw


def _interesting(rng: random.Random) -> bytes:
    kind = rng.randrange(5)
    if kind == 0:
        return struct.pack("<i", rng.choice(INTERESTING_I32))
    if kind == 1:
        return struct.pack("<f", rng.choice(INTERESTING_F32))
    if kind == 2:
        return struct.pack("<q", rng.choice(INTERESTING_I64))
    if kind == 3:
        return bytes([rng.choice((0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)))])
    return struct.pack("<h", rng.choice((0, -1, 0x7FFF, -0x8000, 4, 8)))


def mutate_bytes(data: bytes, rng: random.Random, others: list[bytes],
                 hotspots: list[int] | None = None) -> tuple[bytes, str]:
    """One to four byte-level mutations; returns (new bytes, a description)."""
    buf = bytearray(data)
    done = []
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
        n = len(buf)
        op = rng.choice(("flip", "flip", "interesting", "interesting", "hotspot", "hotspot",
                         "hotspot", "nudge", "nudge", "nudge", "truncate", "splice", "insert",
                         "duplicate", "delete", "zero_run"))
        if n == 0:
            op = "insert"
        if op in ("hotspot", "nudge") and not hotspots:
            op = "interesting"
        if op == "nudge":  # a field moved a little: often still a valid model, deeper paths
            pos = rng.choice(hotspots)
            if pos + 4 <= n:
                old = struct.unpack_from("<i", buf, pos)[0]
                delta = rng.choice((-2, -1, 1, 2, 3, 8))
                struct.pack_into("<i", buf, pos, max(-2 ** 31, min(2 ** 31 - 1, old + delta)))
            done.append(f"nudge@{pos}")
            continue
        if op == "flip":
            for _ in range(rng.choice((1, 1, 2, 4, 8))):
                pos = rng.randrange(n)
                buf[pos] ^= 1 << rng.randrange(8)
            done.append("bitflip")
        elif op == "interesting":
            pos = rng.randrange(n) & ~(rng.choice((0, 3)))
            _put(buf, pos, _interesting(rng))
            done.append(f"interesting@{pos}")
        elif op == "hotspot":
            pos = rng.choice(hotspots)
            _put(buf, pos, _interesting(rng))
            done.append(f"field@{pos}")
        elif op == "truncate":
            cut = rng.choice((rng.randrange(n), n // 2, n - 1, 16, 0)) if n > 1 else 0
            del buf[max(cut, 0):]
            done.append(f"truncate@{cut}")
        elif op == "splice":
            other = rng.choice(others) if others else bytes(buf)
            a, b = sorted(rng.randrange(len(other) + 1) for _ in range(2))
            pos = rng.randrange(n + 1)
            end = min(n, pos + (b - a)) if rng.random() < 0.5 else pos
            buf[pos:end] = other[a:b]
            done.append("splice")
        elif op == "insert":
            pos = rng.randrange(n + 1)
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.choice((1, 4, 16, 64))))
            done.append(f"insert@{pos}")
        elif op == "duplicate":
            a = rng.randrange(n)
            b = min(n, a + rng.choice((4, 16, 256, 4096)))
            pos = rng.randrange(n + 1)
            buf[pos:pos] = buf[a:b]
            done.append("duplicate")
        elif op == "delete":
            a = rng.randrange(n)
            del buf[a:a + rng.choice((1, 4, 16, 256))]
            done.append("delete")
        else:
            a = rng.randrange(n)
            buf[a:a + rng.choice((4, 16, 64))] = bytes(len(buf[a:a + 64]))[:len(buf[a:a + 64])]
            done.append("zero_run")
    return bytes(buf), "+".join(done)


def tflite_hotspots(data: bytes) -> list[int]:
    """Byte positions of flatbuffer fields worth corrupting: every field of the model, its
    subgraph, tensors, quantization, operators, options and opcodes, and the elements of
    shapes, scales, zero points and operator inputs/outputs."""
    import tflite

    spots: list[int] = []
    base = np.frombuffer(data, np.uint8).ctypes.data

    def fields(tab) -> None:
        try:
            vt = tab.Pos - struct.unpack_from("<i", data, tab.Pos)[0]
            vlen = struct.unpack_from("<H", data, vt)[0]
            for k in range(4, vlen, 2):
                off = struct.unpack_from("<H", data, vt + k)[0]
                if off:
                    spots.append(tab.Pos + off)
        except struct.error:
            pass

    def elems(arr, size: int) -> None:
        if isinstance(arr, np.ndarray) and arr.size:
            start = arr.ctypes.data - base
            spots.extend(start + size * i for i in range(min(arr.size, 64)))

    m = tflite.Model.GetRootAsModel(data, 0)
    fields(m._tab)
    for c in range(min(m.OperatorCodesLength(), 64)):
        fields(m.OperatorCodes(c)._tab)
    sg = m.Subgraphs(0)
    fields(sg._tab)
    elems(sg.InputsAsNumpy(), 4)
    elems(sg.OutputsAsNumpy(), 4)
    for i in range(min(sg.TensorsLength(), 256)):
        t = sg.Tensors(i)
        fields(t._tab)
        elems(t.ShapeAsNumpy(), 4)
        q = t.Quantization()
        if q is not None:
            fields(q._tab)
            elems(q.ScaleAsNumpy(), 4)
            elems(q.ZeroPointAsNumpy(), 8)
    for i in range(min(sg.OperatorsLength(), 256)):
        op = sg.Operators(i)
        fields(op._tab)
        elems(op.InputsAsNumpy(), 4)
        elems(op.OutputsAsNumpy(), 4)
        table = op.BuiltinOptions()
        if table is not None:
            fields(table)
    return sorted(set(p for p in spots if 0 <= p < len(data)))


# ---- ONNX structure mutations ----------------------------------------------------------------

def mutate_onnx(blob: bytes, rng: random.Random) -> tuple[bytes, str]:
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.ModelProto.FromString(blob)
    g = m.graph
    done = []
    for _ in range(rng.choice((1, 1, 2, 3))):
        op = rng.choice(("dim", "dim", "attr", "attr", "attr", "weight", "weight", "name",
                         "op_type", "drop_node", "cycle", "opset", "dtype", "drop_init",
                         "input_dim0", "swap"))
        nodes = list(g.node)
        if op == "dim":
            vis = [*g.input, *g.output, *g.value_info]
            if vis:
                vi = rng.choice(vis)
                dims = vi.type.tensor_type.shape.dim
                if len(dims):
                    d = rng.choice(dims)
                    d.Clear()
                    if rng.random() < 0.2:
                        d.dim_param = "N"
                    else:
                        d.dim_value = rng.choice((0, -1, 1, 2, 3, 1000, 2 ** 31 - 1, 2 ** 40))
                    done.append(f"dim:{vi.name}")
                elif rng.random() < 0.5:
                    vi.type.tensor_type.shape.dim.add().dim_value = 1
                    done.append(f"rank:{vi.name}")
        elif op == "attr" and nodes:
            n = rng.choice(nodes)
            if n.attribute and rng.random() < 0.8:
                a = rng.choice(n.attribute)
                if a.type == onnx.AttributeProto.INTS:
                    vals = list(a.ints) or [1]
                    vals[rng.randrange(len(vals))] = rng.choice((0, -1, -7, 3, 1000, 2 ** 31,
                                                                 2 ** 62))
                    if rng.random() < 0.2:
                        vals = vals[:-1] if len(vals) > 1 else vals * 3
                    del a.ints[:]
                    a.ints.extend(vals)
                elif a.type == onnx.AttributeProto.INT:
                    a.i = rng.choice((0, -1, -5, 2, 7, 1000, 2 ** 40))
                elif a.type == onnx.AttributeProto.FLOAT:
                    a.f = rng.choice(INTERESTING_F32)
                elif a.type == onnx.AttributeProto.STRING:
                    a.s = rng.choice((b"", b"SAME_UPPER", b"VALID", b"reflect", b"bogus",
                                      b"edge", b"linear"))
                done.append(f"attr:{n.name}.{a.name}")
            else:
                name = rng.choice(("strides", "pads", "dilations", "kernel_shape", "group",
                                   "axis", "perm", "auto_pad", "ceil_mode", "keepdims",
                                   "transA", "count_include_pad"))
                value = rng.choice(([0, 0], [1, 1], [3, -1, 0, 2], [2 ** 31] * 2, 0, 1, -1,
                                    b"SAME_LOWER", 5))
                n.attribute.append(helper.make_attribute(name, value))
                done.append(f"+attr:{n.name}.{name}")
        elif op == "weight" and g.initializer:
            init = rng.choice(g.initializer)
            arr = numpy_helper.to_array(init).copy()
            choice = rng.randrange(5)
            if choice == 0 and arr.dtype.kind == "f" and arr.size:
                arr.flat[rng.randrange(arr.size)] = rng.choice((np.nan, np.inf, -np.inf, 1e38))
            elif choice == 1:
                arr = arr.reshape(-1)[: max(arr.size - 1, 0)]
            elif choice == 2 and arr.dtype.kind == "f":
                arr = np.zeros_like(arr)
            elif choice == 3 and arr.dtype.kind in "iu" and arr.size:
                arr.flat[rng.randrange(arr.size)] = rng.choice((0, -1, 2 ** 31 - 1, -2 ** 40,
                                                               2 ** 62, 99))
            else:
                arr = arr.astype(rng.choice((np.float64, np.int32, np.float16)))
            init.CopyFrom(numpy_helper.from_array(arr, init.name))
            done.append(f"weight:{init.name}")
        elif op == "name" and nodes:
            n = rng.choice(nodes)
            lst = n.input if (rng.random() < 0.7 and len(n.input)) else n.output
            if len(lst):
                lst[rng.randrange(len(lst))] = rng.choice(("nope", "", "x", "y", lst[0]))
            done.append(f"name:{n.name}")
        elif op == "op_type" and nodes:
            n = rng.choice(nodes)
            n.op_type = rng.choice(("Conv", "Relu", "Gemm", "MatMul", "Add", "Softmax",
                                    "MaxPool", "Reshape", "Flatten", "Identity", "Bogus",
                                    "Concat", "Pad", "Slice", "Transpose", "Resize",
                                    "ReduceMean", "Dropout", "Squeeze", "Unsqueeze"))
            done.append(f"op:{n.name}")
        elif op == "drop_node" and len(nodes) > 1:
            del g.node[rng.randrange(len(nodes))]
            done.append("drop_node")
        elif op == "cycle" and len(nodes) > 1:
            i, j = sorted(rng.sample(range(len(nodes)), 2))
            g.node[i].input[0] = g.node[j].output[0]
            done.append("cycle")
        elif op == "swap" and len(nodes) > 1:
            i, j = rng.sample(range(len(nodes)), 2)
            a, b = copy.deepcopy(g.node[i]), copy.deepcopy(g.node[j])
            g.node[i].CopyFrom(b)
            g.node[j].CopyFrom(a)
            done.append("swap")
        elif op == "opset":
            m.opset_import[0].version = rng.choice((1, 7, 11, 12, 22, 99, 0))
            done.append("opset")
        elif op == "dtype":
            vis = [*g.input, *g.output]
            if vis:
                rng.choice(vis).type.tensor_type.elem_type = rng.choice((2, 3, 6, 7, 10, 11,
                                                                         16, 0))
            done.append("dtype")
        elif op == "drop_init" and g.initializer:
            del g.initializer[rng.randrange(len(g.initializer))]
            done.append("drop_init")
        elif op == "input_dim0" and g.input:
            dims = g.input[0].type.tensor_type.shape.dim
            if len(dims) > 2:
                dims[rng.randrange(2, len(dims))].dim_value = rng.choice(
                    (1, 2, 4096, 100000, 0))
            done.append("input_dim")
    return m.SerializeToString(), "+".join(done) or "none"


# ---- pt2 (zip) mutations ----------------------------------------------------------------------

def mutate_pt2(blob: bytes, rng: random.Random) -> tuple[bytes, str]:
    """Mutate one member of the archive (kept a valid zip), or the raw bytes."""
    if rng.random() < 0.25:
        return mutate_bytes(blob, rng, [])
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        members = [(i, z.read(i.filename)) for i in z.infolist()]
    k = rng.randrange(len(members))
    info, data = members[k]
    if info.filename.endswith(".json") and rng.random() < 0.6 and data:
        text = data.decode("utf-8", "replace")
        digits = [i for i, ch in enumerate(text) if ch.isdigit()]
        if digits:
            i = rng.choice(digits)
            text = text[:i] + rng.choice(("0", "-1", "99999999999", "1e400", "NaN", "[]",
                                           "null", "\"x\"")) + text[i + 1:]
        data, what = text.encode(), "json"
    else:
        data, what = mutate_bytes(data, rng, [])
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for j, (i2, d2) in enumerate(members):
            if rng.random() < 0.03:
                continue  # drop a member
            z.writestr(i2, data if j == k else d2)
    return out.getvalue(), f"member:{info.filename}:{what}"


# ---- IR mutations ------------------------------------------------------------------------------

WEIRD_INT = (0, -1, -3, 1, 2, 5, 1000, 2 ** 31 - 1, 2 ** 31, 2 ** 40, -2 ** 40)
WEIRD_DIM = (0, -1, 1, 2, 3, 7, 1000, 65536, 2 ** 31 - 1, 2 ** 40)
WEIRD_FLOAT = (float("nan"), float("inf"), float("-inf"), 0.0, -0.0, -1.0, 1e-45, 1e-30,
               1e30, 3.4e38, 1.7e308)


def _weird_like(value, rng: random.Random):
    if isinstance(value, bool):
        return rng.choice((True, False, 2, None))
    if isinstance(value, int):
        return rng.choice(WEIRD_INT)
    if isinstance(value, float):
        return rng.choice(WEIRD_FLOAT + (None,))
    if isinstance(value, (tuple, list)):
        vals = list(value)
        if vals and rng.random() < 0.8:
            k = rng.randrange(len(vals))
            vals[k] = _weird_like(vals[k], rng)
        elif rng.random() < 0.5:
            vals = vals[:-1]
        else:
            vals = vals + [rng.choice(WEIRD_INT)]
        return type(value)(vals) if isinstance(value, tuple) else vals
    if value is None:
        return rng.choice((0, -1.0, float("nan"), (1, 1), "x"))
    return rng.choice((None, 0, "bogus", (), float("nan")))


def mutate_graph(graph, rng: random.Random):
    """1-3 mutations of a deep copy of an IR graph; returns (graph, description)."""
    from edgec.toolchain.ir import QuantParams, Tensor
    from edgec.toolchain.ops import OPS

    g = copy.deepcopy(graph)
    done = []
    for _ in range(rng.choice((1, 1, 2, 3))):
        names = list(g.tensors)
        acts = [n for n in names if not g.tensors[n].is_const]
        consts = [n for n in names if g.tensors[n].is_const]
        quanted = [n for n in names if g.tensors[n].quant is not None]
        op = rng.choice(("shape", "shape", "attr", "attr", "attr", "scale", "scale", "zp",
                         "per_channel", "const", "cycle", "dangling", "dup_writer",
                         "drop_node", "swap", "op", "io", "dtype", "huge", "inputs",
                         "del_tensor", "empty"))
        if op == "shape" and names:
            n = rng.choice(names)
            t = g.tensors[n]
            shape = list(t.shape)
            if shape and rng.random() < 0.8:
                shape[rng.randrange(len(shape))] = rng.choice(WEIRD_DIM)
            elif shape and rng.random() < 0.5:
                shape = shape[:-1]
            else:
                shape = shape + [rng.choice((1, 2, 0))]
            g.tensors[n] = Tensor(t.name, tuple(shape), t.dtype, t.data, t.quant)
            done.append(f"shape:{n}")
        elif op == "attr" and g.nodes:
            node = rng.choice(g.nodes)
            if node.attrs and rng.random() < 0.85:
                k = rng.choice(sorted(node.attrs))
                node.attrs[k] = _weird_like(node.attrs[k], rng)
                done.append(f"attr:{node.name}.{k}")
            elif node.attrs:
                k = rng.choice(sorted(node.attrs))
                del node.attrs[k]
                done.append(f"-attr:{node.name}.{k}")
        elif op == "scale" and quanted:
            n = rng.choice(quanted)
            t = g.tensors[n]
            s = np.array(t.quant.scale, np.float64, copy=True)
            s.flat[rng.randrange(max(s.size, 1))] = rng.choice(WEIRD_FLOAT)
            g.tensors[n] = Tensor(t.name, t.shape, t.dtype, t.data,
                                  QuantParams(s, t.quant.zero_point, t.quant.axis))
            done.append(f"scale:{n}")
        elif op == "zp" and quanted:
            n = rng.choice(quanted)
            t = g.tensors[n]
            z = np.array(t.quant.zero_point, np.int64, copy=True)
            z.flat[rng.randrange(max(z.size, 1))] = rng.choice((128, -129, 255, 1000,
                                                                 -2 ** 40, 2 ** 62))
            g.tensors[n] = Tensor(t.name, t.shape, t.dtype, t.data,
                                  QuantParams(t.quant.scale, z, t.quant.axis))
            done.append(f"zp:{n}")
        elif op == "per_channel" and quanted:
            n = rng.choice(quanted)
            t = g.tensors[n]
            size = rng.choice((0, 1, 2, 3, 17))
            q = QuantParams(np.full(size, 0.01), np.zeros(size, np.int64),
                            rng.choice((None, 0, 3, -1, 7)))
            g.tensors[n] = Tensor(t.name, t.shape, t.dtype, t.data, q)
            done.append(f"per_channel:{n}")
        elif op == "const" and consts:
            n = rng.choice(consts)
            t = g.tensors[n]
            data = np.array(t.data, copy=True)
            c = rng.randrange(5)
            if c == 0:
                data = data.reshape(-1)[: max(data.size // 2, 0)]
            elif c == 1 and data.dtype.kind == "f" and data.size:
                data.flat[rng.randrange(data.size)] = rng.choice((np.nan, np.inf, 1e38))
            elif c == 2 and data.dtype.kind in "iu" and data.size:
                info = np.iinfo(data.dtype)
                data[...] = rng.choice((info.max, info.min))
            elif c == 3:
                data = data.astype(rng.choice((np.float64, np.int16, np.uint8, np.int64)))
            else:
                data = np.zeros((0,), data.dtype)
            g.tensors[n] = Tensor(t.name, t.shape, t.dtype, data, t.quant)
            done.append(f"const:{n}")
        elif op == "cycle" and len(g.nodes) > 1:
            i, j = sorted(rng.sample(range(len(g.nodes)), 2))
            if g.nodes[i].inputs:
                g.nodes[i].inputs[0] = g.nodes[j].outputs[0]
            done.append("cycle")
        elif op == "dangling" and g.nodes:
            node = rng.choice(g.nodes)
            lst = node.inputs if rng.random() < 0.7 or not node.outputs else node.outputs
            if lst:
                lst[rng.randrange(len(lst))] = rng.choice(("no_such_tensor", "", "42"))
            done.append(f"dangling:{node.name}")
        elif op == "dup_writer" and len(g.nodes) > 1:
            a, b = rng.sample(g.nodes, 2)
            if a.outputs and b.outputs:
                b.outputs[0] = a.outputs[0]
            done.append("dup_writer")
        elif op == "drop_node" and g.nodes:
            del g.nodes[rng.randrange(len(g.nodes))]
            done.append("drop_node")
        elif op == "swap" and len(g.nodes) > 1:
            i, j = rng.sample(range(len(g.nodes)), 2)
            g.nodes[i], g.nodes[j] = g.nodes[j], g.nodes[i]
            done.append("swap")
        elif op == "op" and g.nodes:
            node = rng.choice(g.nodes)
            node.op = rng.choice(sorted(OPS) + ["bogus", ""])
            done.append(f"op:{node.name}")
        elif op == "io":
            c = rng.randrange(5)
            if c == 0 and g.outputs:
                g.outputs[0] = rng.choice(names + ["no_such_tensor"])
            elif c == 1 and g.inputs:
                g.inputs[0] = rng.choice(names + ["no_such_tensor"])
            elif c == 2:
                g.outputs = g.outputs + [rng.choice(names)] if names else []
            elif c == 3:
                g.inputs = []
            else:
                g.outputs = []
            done.append("io")
        elif op == "dtype" and names:
            n = rng.choice(names)
            t = g.tensors[n]
            g.tensors[n] = Tensor(t.name, t.shape, rng.choice(("float16", "int16", "uint8",
                                                               "int32", "float32", "int8",
                                                               "bogus")), t.data, t.quant)
            done.append(f"dtype:{n}")
        elif op == "huge" and acts:
            n = rng.choice(acts)
            t = g.tensors[n]
            shape = rng.choice(((1, 65536, 65536, 256), (1, 100000, 1000, 3),
                                (2 ** 31, 1), (1, 2 ** 20, 2 ** 20, 2 ** 20)))
            g.tensors[n] = Tensor(t.name, shape[: max(len(t.shape), 1)] if rng.random() < 0.5
                                  else shape, t.dtype, t.data, t.quant)
            done.append(f"huge:{n}")
        elif op == "inputs" and g.nodes:
            node = rng.choice(g.nodes)
            if rng.random() < 0.5:
                node.inputs = node.inputs[:rng.randrange(len(node.inputs) + 1)]
            else:
                node.inputs = node.inputs + [rng.choice(names + [""])]
            done.append(f"inputs:{node.name}")
        elif op == "del_tensor" and names:
            del g.tensors[rng.choice(names)]
            done.append("del_tensor")
        elif op == "empty":
            g.nodes = []
            done.append("empty")
    return g, "+".join(done) or "none"


# ---- running one case ----------------------------------------------------------------------------

class Hang(BaseException):
    """Raised by the soft time limit; a BaseException so `except Exception` can't eat it."""


@dataclass
class Outcome:
    status: str  # accepted | rejected | bad_message | crash | hang | died
    message: str = ""
    where: str = ""
    mutation: str = ""
    seconds: float = 0.0


def make_case(seeds: Seeds, kind: str, seed_index: int, case: int):
    """(description, file bytes and suffix, or an IR graph and whether it is int8)."""
    rng = random.Random(f"{kind}:{seed_index}:{case}")
    if kind == "ir":
        name = IR_SEEDS[seed_index % len(IR_SEEDS)]
        graph, quantized = seeds.graph(name)
        g, what = mutate_graph(graph, rng)
        return f"{name}:{what}", ("ir", g, quantized)
    files = seeds.files(kind)
    name, blob = files[seed_index % len(files)]
    others = [b for _, b in files]
    if kind == "tflite":
        if not hasattr(seeds, "_hot"):
            seeds._hot = {}
        if name not in seeds._hot:
            seeds._hot[name] = tflite_hotspots(blob)
        data, what = mutate_bytes(blob, rng, others, seeds._hot[name])
    elif kind == "onnx":
        data, what = (mutate_onnx(blob, rng) if rng.random() < 0.75
                      else mutate_bytes(blob, rng, others))
    else:
        data, what = mutate_pt2(blob, rng)
    return f"{name}:{what}", ("file", data, {"tflite": ".tflite", "onnx": ".onnx",
                                             "pt2": ".pt2"}[kind])


@contextlib.contextmanager
def _time_limit(seconds: float):
    def on_alarm(signum, frame):
        raise Hang(f"over the {seconds:g} s limit")
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


class _GraphSource:
    """Stands in for toolchain.source.load_source: returns the mutated IR graph."""

    def __init__(self, graph, quantized: bool):
        self.graph, self.quantized_flag = graph, quantized

    def __call__(self, opts):
        from edgec.toolchain.source import Source
        g = self.graph
        if self.quantized_flag:
            g.meta["quantized"] = True
        shape = tuple(g.tensors[g.inputs[0]].shape) if g.inputs and g.inputs[0] in g.tensors \
            else (1,)
        src = Source(onnx=None, graph=g, input_shape=shape)
        src.float_reference = lambda xs: [np.zeros(1, np.float32) for _ in xs]
        src.float_outputs = lambda xs: [[np.zeros(1, np.float32) for _ in g.outputs]
                                        for _ in xs]
        return src


def compile_case(payload, work: Path) -> None:
    """The pipeline up to the C sources, on a file or on an IR graph."""
    from edgec.toolchain import pipeline, source
    from edgec.toolchain.options import CompileOptions
    out = work / "out"
    if payload[0] == "file":
        model = work / f"model{payload[2]}"
        model.write_bytes(payload[1])
        opts = CompileOptions(model=model, target="stm32f746", out_dir=out, build=False,
                              run=False, calib_samples=4, check_samples=2,
                              input_shape=(1, 3, 8, 8))
        pipeline.compile_model(opts)
        return
    model = work / "graph.ir"
    model.write_bytes(b"ir")
    opts = CompileOptions(model=model, target="stm32f746", out_dir=out, build=False,
                          run=False, calib_samples=4, check_samples=2)
    real = source.load_source
    source.load_source = _GraphSource(payload[1], payload[2])
    try:
        pipeline.compile_model(opts)
    finally:
        source.load_source = real


def run_case(seeds: Seeds, kind: str, seed_index: int, case: int, limit: float,
             crashes: Path | None = None) -> Outcome:
    from edgec.toolchain.errors import MAX_MESSAGE, EdgecError
    t0 = time.monotonic()
    try:
        what, payload = make_case(seeds, kind, seed_index, case)
    except Exception as e:  # the mutator itself: report, it is not the compiler's fault
        return Outcome("accepted", f"mutator skipped: {type(e).__name__}: {e}",
                       seconds=time.monotonic() - t0)
    work = Path(tempfile.mkdtemp(prefix="edgec-fuzz-"))
    try:
        with _time_limit(limit), warnings_quiet():
            compile_case(payload, work)
        out = Outcome("accepted", mutation=what)
    except Hang as e:
        out = Outcome("hang", str(e), _where(e), what)
    except EdgecError as e:
        msg = str(e)
        ok = msg.strip() != "" and "\n" not in msg and len(msg) <= MAX_MESSAGE
        out = Outcome("rejected" if ok else "bad_message", msg[:500], _where(e), what)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # anything else (MemoryError, RecursionError included)
        out = Outcome("crash", f"{type(e).__name__}: {str(e)[:300]}", _where(e), what)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out.seconds = time.monotonic() - t0
    if crashes is not None and out.status in ("crash", "hang", "bad_message") \
            and payload[0] == "file":
        crashes.mkdir(parents=True, exist_ok=True)
        (crashes / f"{kind}-{seed_index}-{case}{payload[2]}").write_bytes(payload[1])
    return out


def _where(e: BaseException) -> str:
    """The innermost edgec frame (file:line function) the exception passed through."""
    frames = traceback.extract_tb(e.__traceback__)
    ours = [f for f in frames if "/edgec/" in f.filename or "/work/main/" in f.filename
            and "benchmarks/fuzz.py" not in f.filename]
    f = (ours or frames or [None])[-1]
    if f is None:
        return ""
    last = frames[-1]
    return (f"{Path(f.filename).name}:{f.lineno} {f.name}"
            + (f" -> {Path(last.filename).name}:{last.lineno}" if last is not f else ""))


@contextlib.contextmanager
def warnings_quiet():
    import warnings
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


# ---- worker and driver ---------------------------------------------------------------------------

def worker_main(limit: float, mem_gb: float, crashes: str | None) -> None:
    """Read JSON cases from stdin, one per line; answer one JSON outcome per line."""
    import resource
    if mem_gb > 0:
        cap = int(mem_gb * 2 ** 30)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    sys.setrecursionlimit(5000)
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # stray prints must not corrupt the channel
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    work = Path(tempfile.mkdtemp(prefix="edgec-fuzz-seeds-"))
    seeds = Seeds(work)
    try:
        for line in sys.stdin:
            req = json.loads(line)
            o = run_case(seeds, req["kind"], req["seed"], req["case"], limit,
                         Path(crashes) if crashes else None)
            out.write(json.dumps(o.__dict__) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


class Worker:
    def __init__(self, limit: float, mem_gb: float, crashes: Path | None):
        self.args = [sys.executable, os.path.abspath(__file__), "--worker", "--limit",
                     str(limit), "--mem-gb", str(mem_gb)]
        if crashes is not None:
            self.args += ["--crashes", str(crashes)]
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, bufsize=1,
                                     start_new_session=True)

    def kill(self):
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def run(self, kind: str, seed: int, case: int, hard_limit: float) -> Outcome:
        if self.proc is None:
            self.start()
        self.proc.stdin.write(json.dumps({"kind": kind, "seed": seed, "case": case}) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], hard_limit)
        if not ready:
            self.kill()
            return Outcome("hang", f"no answer within {hard_limit:g} s (killed)")
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            self.proc = None
            why = f"signal {-code}" if code < 0 else f"exit {code}"
            return Outcome("died", f"worker died ({why}; out of memory or a native crash)")
        return Outcome(**json.loads(line))


@dataclass
class Stats:
    tried: int = 0
    accepted: int = 0
    rejected: int = 0
    crashes: int = 0
    hangs: int = 0
    bad_messages: int = 0
    seconds: float = 0.0


def fuzz(files: int, seed: int = 0, kinds=KINDS, limit: float = 20.0, mem_gb: float = 6.0,
         crashes: Path | None = None, log=print, weights=None) -> tuple[Stats, list]:
    """Run `files` cases through a worker process; returns (stats, failures)."""
    weights = weights or DEFAULT_WEIGHTS
    plan_rng = random.Random(seed)
    pool = [k for k in kinds for _ in range(weights.get(k, 1))]
    worker = Worker(limit, mem_gb, crashes)
    stats, failures = Stats(), []
    t0 = time.monotonic()
    # the first case of a kind also builds its seeds (torch for pt2): a longer hard limit
    warm: set[str] = set()
    try:
        for i in range(files):
            kind = plan_rng.choice(pool)
            seed_index, case = plan_rng.randrange(1000), seed * 10 ** 7 + i
            hard = limit * 2 + 10 + (90 if kind not in warm else 0)
            o = worker.run(kind, seed_index, case, hard)
            warm.add(kind)
            stats.tried += 1
            if o.status == "accepted":
                stats.accepted += 1
            elif o.status == "rejected":
                stats.rejected += 1
            else:
                if o.status in ("crash", "died"):
                    stats.crashes += 1
                elif o.status == "hang":
                    stats.hangs += 1
                else:
                    stats.bad_messages += 1
                key = f"{kind}:{seed_index}:{case}"
                failures.append((key, o))
                log(f"  {o.status.upper():11s} {key}  {o.mutation[:60]}  {o.where}  "
                    f"{o.message[:200]}")
            if (i + 1) % 500 == 0:
                log(f"  ... {i + 1} cases, {time.monotonic() - t0:.0f} s")
    finally:
        worker.kill()
    stats.seconds = time.monotonic() - t0
    return stats, failures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--limit", type=float, default=20.0, help="seconds per case (soft)")
    ap.add_argument("--mem-gb", type=float, default=6.0, help="worker address-space cap")
    ap.add_argument("--crashes", type=Path, help="save failing input files here")
    ap.add_argument("--replay", help="KIND:SEED:CASE: run one case in this process, "
                                     "with the traceback")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker_main(args.limit, args.mem_gb, str(args.crashes) if args.crashes else None)
        return
    if args.replay:
        kind, seed_index, case = args.replay.split(":")
        work = Path(tempfile.mkdtemp(prefix="edgec-fuzz-"))
        seeds = Seeds(work)
        what, payload = make_case(seeds, kind, int(seed_index), int(case))
        print(f"case {args.replay}: {what}")
        if payload[0] == "file":
            print(f"input file: {work / ('model' + payload[2])}")
        compile_case(payload, work)  # the traceback, if any, is the report
        print("accepted")
        return
    kinds = tuple(k for k in args.kinds.split(",") if k)
    for k in kinds:
        if k not in KINDS:
            raise SystemExit(f"unknown kind {k}; known: {', '.join(KINDS)}")
    print(f"fuzzing {args.files} cases ({', '.join(kinds)}), seed {args.seed}, "
          f"limit {args.limit:g} s per case")
    stats, failures = fuzz(args.files, args.seed, kinds, args.limit, args.mem_gb,
                           args.crashes)
    print(f"\nfiles tried        {stats.tried}\n"
          f"accepted           {stats.accepted}\n"
          f"rejected cleanly   {stats.rejected}\n"
          f"crashes            {stats.crashes}\n"
          f"hangs              {stats.hangs}\n"
          f"bad messages       {stats.bad_messages}\n"
          f"time               {stats.seconds:.0f} s")
    if failures:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
