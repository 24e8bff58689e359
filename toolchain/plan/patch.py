"""Patch-based inference (MCUNetV2): run the high-resolution first layers stripe by stripe.

    choose(program, plain, budget, option, select, board) -> PatchChoice | None
    stripe_program(program, split, stripes, into_fc) -> Program  # the striped calls
    plan_program(program) -> Plan                            # plan_memory, slice aware

When the first layers set the arena's peak, the prefix calls[0..split] runs once per
horizontal stripe of the split layer's output (full width: in NHWC int8 a row range is one
contiguous run of bytes, so the unchanged kernels run on it). For each stripe the input
rows every earlier layer needs are computed backwards (conv / pooling: the receptive field
with its halo, clipped at the borders; elementwise: the same rows); each prefix layer then
runs on its row range as an ordinary call: its input starts at the first row it needs (or
at row 0, `padding.h` then being the image's top padding still in reach) and ends at the
last row it needs (or at the image's bottom border, whose padding the kernels imply from
input.h as always). So a stripe computes the same bytes as the whole-tensor call; only the
halo rows are computed twice (the extra MACs).

Tensors of one stripe get their own names ("<tensor>@s<k>"), so the ordinary planner
reuses their bytes from stripe to stripe and only the split layer's full output (written
stripe by stripe) and one stripe's intermediates are ever live. Reading part of a tensor or
writing a stripe into the split output is a row *slice* (Program.slices: name ->
(parent, first row)): its bytes are the parent's from that row on, a pointer offset.

Into a fully connected layer (`into_fc`): when the split output feeds only an FC (one row),
the split output is never whole (likewise into a mean over H and W: per-channel sums).
Each stripe is handed to the FC at once: in NHWC a row stripe is a contiguous run of the
flattened input, so it meets a run of weight columns;
edgec_fully_connected_first_s8 / _partial_s8 sum it into C_OUT int32 accumulators (an
arena tensor "<fc>@acc", each stripe's a slice at row 0 of it) and
edgec_fully_connected_finish_s8 requantizes once. Integer sums are exact, so the bytes
are the whole layer's. Leading views of the graph input (a reshape to NHWC) stay ahead of
the stripes, which read the view.
"""
from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import BudgetError, EdgecError
from ..ir import Tensor
from ..lower.program import ConstArray, KernelCall, Program
from .arena import Plan, plan_memory

FC = "edgec_fully_connected_s8"
MEAN = "edgec_mean_s8"
SPATIAL = {"edgec_conv2d_s8", "edgec_depthwise_conv2d_s8", "edgec_max_pool2d_s8",
           "edgec_avg_pool2d_s8"}
ROWWISE_SIZE = {"edgec_lut_s8", "edgec_hard_swish_s8", "edgec_leaky_relu_s8",
                "edgec_requantize_s8"}  # elementwise, one input, a "size" field
ROWWISE_FLAT = {"edgec_add_s8", "edgec_mul_s8"}  # elementwise, two same-shape inputs
MAX_STRIPES = 16  # more stripes: more halo recomputation for ever smaller savings
OPTION_RE = re.compile(r"^(\d+)@(.+)$")


@dataclass
class PatchChoice:
    program: Program  # the striped program (kernels selected)
    plan: Plan
    split: str  # the split layer (its call name)
    split_index: int  # its index in the unstriped program
    stripes: int
    arena_plain_bytes: int
    macs_plain: int
    macs_extra: int
    into: str | None = None  # the fully connected layer fed stripe by stripe, if any

    def report(self) -> dict:
        return {"split_layer": self.split, "stripes": self.stripes,
                "layers_striped": self.split_index + 1, "into_layer": self.into,
                "arena_plain_bytes": self.arena_plain_bytes,
                "arena_patched_bytes": self.plan.arena_bytes,
                "macs_plain": self.macs_plain, "macs_extra": self.macs_extra,
                "macs_extra_percent": round(100.0 * self.macs_extra / max(self.macs_plain, 1),
                                            2)}


def parse_option(text: str) -> tuple[str, int | None, str | None]:
    """'auto' | 'min' | 'off' | 'N@layer' -> (mode, stripes, layer)."""
    if text in ("auto", "min", "off"):
        return text, None, None
    m = OPTION_RE.match(text)
    if m is None or int(m.group(1)) < 2:
        raise EdgecError(f"--patch {text!r}: use auto, min, off or N@layer (N >= 2 stripes, "
                         "layer = the last layer to run stripe by stripe, or the fully "
                         "connected layer or mean they feed), e.g. --patch 4@conv3")
    return "force", int(m.group(1)), m.group(2)


def stripe_source(call_name: str) -> str:
    """The layer a stripe call was cut from ("conv3@s2" -> "conv3"), else the name."""
    base, sep, rest = call_name.rpartition("@s")
    return base if sep and rest.isdigit() else call_name


def const_bytes_per_call(program: Program, order: list[int] | None = None) -> list[int]:
    """Flash each call's constant tables add, in execution `order` (default: program
    order): an equal table of an earlier stripe of the same layer is shared (codegen
    emits it once), so it counts at its first stripe only. Indexed by call."""
    order = list(range(len(program.calls))) if order is None else order
    seen: set = set()
    out = [0] * len(program.calls)
    for i in order:
        call = program.calls[i]
        for fname, v in call.fields.items():
            if isinstance(v, ConstArray):
                data = v.data.reshape(-1)
                key = (stripe_source(call.name), fname, v.ctype, data.dtype.str, data.tobytes())
                if stripe_source(call.name) == call.name or key not in seen:
                    out[i] += v.nbytes
                    seen.add(key)
    return out


def unique_const_bytes(program: Program) -> int:
    """Flash of the constant tables, stripes of a layer sharing theirs."""
    return sum(const_bytes_per_call(program))


# ---------------------------------------------------------------------------------------
# Which prefixes can be striped
# ---------------------------------------------------------------------------------------

def _rowwise(call: KernelCall) -> bool:
    if call.kernel in ROWWISE_SIZE:
        return len(call.inputs) == 1
    if call.kernel in ROWWISE_FLAT:
        f = call.fields
        return (tuple(f["input1_stride"]) == (0, 0, 0, 1)
                and tuple(f["input2_stride"]) == (0, 0, 0, 1))
    return False


def _stripeable(program: Program, call: KernelCall) -> bool:
    if call.view or len(call.outputs) != 1 or call.input_array:
        return False
    if call.kernel not in SPATIAL and not _rowwise(call):
        return False
    for name in (*call.inputs, *call.outputs):
        t = program.graph.tensors[name]
        if t.dtype != "int8" or len(t.shape) != 4 or t.shape[0] != 1:
            return False
    if call.kernel not in SPATIAL:  # rowwise: every tensor of one shape
        shapes = {tuple(program.graph.tensors[n].shape) for n in (*call.inputs, *call.outputs)}
        return len(shapes) == 1
    return True


def _lead(program: Program) -> tuple[int, str]:
    """(number of leading views of the graph input, the tensor the stripes read): a
    reshape of the input to NHWC stays whole, ahead of the stripes."""
    graph = program.graph
    source, start = graph.inputs[0], 0
    for call in program.calls:
        out = call.outputs[0] if len(call.outputs) == 1 else None
        t = graph.tensors.get(out) if out else None
        if not (call.view and call.inputs == [source] and t is not None and t.dtype == "int8"
                and len(t.shape) == 4 and t.shape[0] == 1 and out not in graph.outputs):
            break
        source, start = out, start + 1
    return start, source


def fc_after(program: Program, k: int) -> int | None:
    """The index of the call that alone reads calls[k]'s output and reduces it whole: a
    fully connected layer taking it as its one input row, or a mean over its H and W;
    else None. (Named for the first kind; the stripes may run into either.)"""
    graph = program.graph
    target = program.calls[k].outputs[0]
    readers = [i for i, c in enumerate(program.calls) if target in c.inputs]
    if readers != [k + 1] or target in graph.outputs:
        return None
    call = program.calls[k + 1]
    if call.inputs != [target] or len(call.outputs) != 1:
        return None
    f, shape = call.fields, tuple(int(d) for d in graph.tensors[target].shape)
    if call.kernel == FC:
        size = int(np.prod(shape, dtype=np.int64))
        return k + 1 if int(f["rows"]) == 1 and int(f["in_depth"]) == size else None
    if call.kernel == MEAN:
        return k + 1 if tuple(int(d) for d in f["input"]) == shape else None
    return None


def split_candidates(program: Program) -> list[int]:
    """Indices k such that calls[0..k] can run stripe by stripe: each is a conv, pooling
    or rowwise elementwise call on 4-D int8 tensors (after the input's leading views),
    reads only the graph input or the prefix's own tensors, and only calls[k]'s output is
    needed after the prefix."""
    graph = program.graph
    if len(graph.inputs) != 1:
        return []
    start, source = _lead(program)
    readers: dict[str, list[int]] = {}
    for i, call in enumerate(program.calls):
        for name in call.inputs:
            readers.setdefault(name, []).append(i)
    out: list[int] = []
    produced: list[str] = []
    spatial = False
    for k, call in enumerate(program.calls):
        if k < start:
            continue
        if not _stripeable(program, call):
            break
        if any(n != source and n not in produced for n in call.inputs):
            break
        produced.append(call.outputs[0])
        spatial = spatial or call.kernel in SPATIAL
        last = call.outputs[0]
        escaped = [n for n in produced[:-1]
                   if n in graph.outputs or any(r > k for r in readers.get(n, []))]
        if spatial and not escaped and graph.tensors[last].shape[1] >= 2 \
                and last not in graph.outputs:
            out.append(k)
    return out


# ---------------------------------------------------------------------------------------
# Striping
# ---------------------------------------------------------------------------------------

def _input_rows(call: KernelCall, lo: int, hi: int, height: int) -> tuple[int, int]:
    """The input rows [lo', hi') that output rows [lo, hi) of `call` read."""
    if call.kernel not in SPATIAL:
        return lo, hi
    f = call.fields
    kh = f["filter"][1] if call.kernel in ("edgec_conv2d_s8", "edgec_depthwise_conv2d_s8") \
        else f["filter"][0]
    dil = f["dilation"][0] if "dilation" in f else 1
    s, pt = f["stride"][0], f["padding"][0]
    return max(0, lo * s - pt), min(height, (hi - 1) * s - pt + (kh - 1) * dil + 1)


def stripe_bounds(rows: int, stripes: int) -> list[tuple[int, int]]:
    edges = [round(i * rows / stripes) for i in range(stripes + 1)]
    return [(a, b) for a, b in itertools.pairwise(edges) if b > a]


def _stripe_call(call: KernelCall, s: int, out_rows: tuple[int, int],
                 in_rows: tuple[int, int], inputs: list[str], output: str,
                 out_height: int) -> KernelCall:
    lo, hi = out_rows
    f = dict(call.fields)
    if call.kernel in SPATIAL:
        n, _, w, c = f["input"]
        f["input"] = (n, in_rows[1] - in_rows[0], w, c)
        on, _, ow, oc = f["output"]
        f["output"] = (on, hi - lo, ow, oc)
        f["padding"] = (in_rows[0] - (lo * f["stride"][0] - f["padding"][0]), f["padding"][1])
    elif "size" in f:
        f["size"] = int(f["size"]) // out_height * (hi - lo)
    else:
        f["output"] = (1, 1, 1, int(f["output"][3]) // out_height * (hi - lo))
    return dataclasses.replace(call, name=f"{call.name}@s{s}", fields=f, inputs=inputs,
                               outputs=[output], macs=call.macs // out_height * (hi - lo),
                               inplace=dict(call.inplace),
                               inplace_overlap=dict(call.inplace_overlap))


def stripe_program(program: Program, split: int, stripes: int,
                   into_fc: bool = False) -> Program:
    """calls[0..split] run once per stripe of calls[split]'s output rows (module doc);
    `into_fc`: each stripe feeds the fully connected call that follows (fc_after)."""
    if split not in split_candidates(program):
        raise EdgecError(f"layer {split} cannot end a striped prefix")
    fc_index = fc_after(program, split) if into_fc else None
    if into_fc and fc_index is None:
        raise EdgecError(f"layer {split} feeds no fully connected layer or mean alone")
    graph = program.graph.copy()
    tensors = graph.tensors
    start, source = _lead(program)
    prefix = program.calls[start:split + 1]
    target = prefix[-1].outputs[0]
    slices = dict(program.slices)
    calls: list[KernelCall] = list(program.calls[:start])
    acc = None

    def height(name: str) -> int:
        return int(tensors[name].shape[1])

    def row_tensor(parent: str, name: str, rows: int) -> None:
        base = tensors[parent]
        tensors[name] = dataclasses.replace(
            base, name=name, shape=(1, rows, *tuple(base.shape[2:])))

    for s, (a, b) in enumerate(stripe_bounds(height(target), stripes)):
        need: dict[str, tuple[int, int]] = {target: (a, b)}
        wants: dict[int, list[tuple[int, int]]] = {}
        for i in range(len(prefix) - 1, -1, -1):  # backwards: rows each tensor must hold
            call = prefix[i]
            if call.outputs[0] not in need:
                continue  # read by no one: not run
            lo, hi = need[call.outputs[0]]
            wants[i] = []
            for name in call.inputs:
                r = _input_rows(call, lo, hi, height(name))
                wants[i].append(r)
                old = need.get(name, r)
                need[name] = (min(old[0], r[0]), max(old[1], r[1]))
        need[source] = (0, height(source))  # the whole input is in the arena anyway
        held: dict[str, str] = {source: source}  # tensor -> its name in this stripe
        for i, call in enumerate(prefix):
            if i not in wants:
                continue
            ins = []
            for name, (lo, hi) in zip(call.inputs, wants[i]):
                have = need[name]
                if (lo, hi) == have:
                    ins.append(held[name])
                    continue
                sliced = f"{name}@s{s}r{lo}-{hi}"
                row_tensor(name, sliced, hi - lo)
                slices[sliced] = (held[name], lo - have[0])
                ins.append(sliced)
            out = call.outputs[0]
            lo, hi = need[out]
            own = f"{out}@s{s}" if out != target or into_fc else f"{out}@r{lo}-{hi}"
            row_tensor(out, own, hi - lo)
            if out == target and not into_fc:
                slices[own] = (target, lo)
            held[out] = own
            in_rows = wants[i][0]
            calls.append(_stripe_call(call, s, (lo, hi), in_rows, ins, own, height(out)))
        if fc_index is not None:
            part, acc = _fc_part(program.calls[fc_index], s, (a, b), held[target], acc,
                                 tensors, slices, tensors[target])
            calls.append(part)
    if fc_index is None:
        return Program(graph=graph, calls=calls + program.calls[split + 1:], slices=slices)
    return Program(graph=graph, calls=calls + [_fc_finish(program.calls[fc_index], acc)]
                   + program.calls[fc_index + 1:], slices=slices)


def _fc_part(fc: KernelCall, s: int, rows: tuple[int, int], stripe: str, acc: str | None,
             tensors: dict, slices: dict, target: Tensor) -> tuple[KernelCall, str]:
    """The reducing call's int32 sums over stripe `s` (rows [a, b) of its input): a fully
    connected layer's over the matching weight columns, or a mean's per channel."""
    f = fc.fields
    row_values = int(np.prod(target.shape, dtype=np.int64)) // int(target.shape[1])
    if fc.kernel == FC:
        depth = int(f["out_depth"])
        cols = (rows[1] - rows[0]) * row_values
        fields = {"in_depth": int(f["in_depth"]), "col_start": rows[0] * row_values,
                  "cols": cols, "out_depth": depth, "input_offset": f["input_offset"],
                  "weights": f["weights"], "bias": f["bias"] if acc is None else None}
        prefix, macs = "edgec_fully_connected", cols * depth
    else:
        depth = int(target.shape[3])
        fields = {"pixels": (rows[1] - rows[0]) * int(target.shape[2]), "channels": depth}
        prefix, macs = "edgec_mean", 0
    root = f"{fc.name}@acc"
    tensors[root] = Tensor(root, (1, depth), "int32")
    mine = f"{root}@s{s}"
    tensors[mine] = Tensor(mine, (1, depth), "int32")
    slices[mine] = (root, 0)
    kernel = f"{prefix}_first_s8" if acc is None else f"{prefix}_partial_s8"
    call = KernelCall(f"{fc.name}@s{s}", fc.op, kernel, f"{prefix}_partial_params",
                      fields, inputs=[stripe] + ([acc] if acc else []), outputs=[mine],
                      macs=macs)
    return call, mine


def _fc_finish(fc: KernelCall, acc: str) -> KernelCall:
    """The reducing call's requantization of the summed parts, as the whole call's."""
    f = fc.fields
    if fc.kernel == FC:
        fields = {k: f[k] for k in ("out_depth", "output_offset", "act_min", "act_max",
                                    "output_multiplier", "output_shift")}
        prefix = "edgec_fully_connected"
    else:
        _, h, w, c = (int(d) for d in f["input"])
        fields = {"channels": c, "count": h * w,
                  **{k: f[k] for k in ("input_offset", "output_offset", "multiplier",
                                       "shift", "act_min", "act_max")}}
        prefix = "edgec_mean"
    return KernelCall(fc.name, fc.op, f"{prefix}_finish_s8", f"{prefix}_finish_params",
                      fields, inputs=[acc], outputs=list(fc.outputs))


# ---------------------------------------------------------------------------------------
# Planning with slices
# ---------------------------------------------------------------------------------------

def plan_program(program: Program, **kwargs) -> Plan:
    """plan_memory for a program with row slices: the planner sees each slice as its
    parent (so the parent lives while a slice is used; calls on slices get no in-place
    alias), then every slice gets its parent's offset plus its first row's bytes."""
    if not program.slices:
        return plan_memory(program, **kwargs)
    slices = program.slices

    def root(name: str) -> str:
        return slices[name][0] if name in slices else name

    calls = []
    for call in program.calls:
        if any(n in slices for n in (*call.inputs, *call.outputs)):
            call = dataclasses.replace(call, inputs=[root(n) for n in call.inputs],
                                       outputs=[root(n) for n in call.outputs],
                                       inplace={}, inplace_overlap={})
        calls.append(call)
    plan = plan_memory(Program(graph=program.graph, calls=calls), **kwargs)
    for name, (parent, row) in slices.items():
        t: Tensor = program.graph.tensors[parent]
        row_bytes = t.nbytes // int(t.shape[1])
        plan.offsets[name] = plan.offsets[parent] + row * row_bytes
    return plan


# ---------------------------------------------------------------------------------------
# The automatic choice
# ---------------------------------------------------------------------------------------

def _layer_index(program: Program, layer: str, candidates: list[int]) -> tuple[int, bool]:
    """(split index, into_fc) for `N@layer`: a prefix's last layer, or the fully
    connected layer it feeds."""
    for k in candidates:
        if program.calls[k].name == layer:
            return k, False
        j = fc_after(program, k)
        if j is not None and program.calls[j].name == layer:
            return k, True
    names = [program.calls[k].name for k in candidates]
    names += [program.calls[j].name for j in (fc_after(program, k) for k in candidates)
              if j is not None]
    raise EdgecError(f"--patch: layer '{layer}' cannot end a striped prefix; the layers that "
                     f"can: {', '.join(names) or 'none'}")


def options(program: Program, budget: int | None = None) -> list[tuple[int, int, int, bool]]:
    """Every striping worth planning, as (extra MACs, split index, stripes, into_fc),
    cheapest first; with a `budget`, those whose whole input and split output alone
    exceed it are left out."""
    start, _ = _lead(program)
    tensors = program.graph.tensors
    macs = sum(c.macs for c in program.calls)
    out = []
    for k in split_candidates(program):
        target = tensors[program.calls[k].outputs[0]]
        rows = int(target.shape[1])
        for into_fc in (False, True) if fc_after(program, k) is not None else (False,):
            if k == start and not into_fc:
                continue  # one layer: its input and output stay whole, nothing to save
            if not into_fc and budget is not None and \
                    tensors[program.graph.inputs[0]].nbytes + target.nbytes > budget:
                continue  # in stripe order both are whole and live as the last stripe starts
            for n in range(2, min(MAX_STRIPES, rows) + 1):
                extra = sum(c.macs for c in stripe_program(program, k, n, into_fc).calls) - macs
                out.append((extra, k, n, into_fc))
    return sorted(out)


def choose(program: Program, plain: Plan, budget: int, option: str,
           select: Callable[[Program], Program], board: str = "the target"
           ) -> PatchChoice | None:
    """The striping with the fewest extra MACs whose arena fits `budget`; with 'min' the
    one with the smallest arena, fit or not (ties: the fewest extra MACs); or the forced
    one. `program` is the lowered program (before kernel selection, so each stripe gets
    the kernel variant that suits its shape), `plain` the plan of select(program).
    None: striping is off, not needed (auto and the plain arena fits; min and no striping
    beats it) or impossible (no prefix can be striped: the caller's budget check reports
    the plain arena)."""
    mode, forced_stripes, layer = parse_option(option)
    if mode == "off" or (mode == "auto" and plain.arena_bytes <= budget):
        return None
    candidates = split_candidates(program)
    macs = sum(c.macs for c in program.calls)

    def build(k: int, n: int, into_fc: bool, exact: bool) -> PatchChoice:
        striped = select(stripe_program(program, k, n, into_fc))
        plan = plan_program(striped, exact=exact)
        into = program.calls[fc_after(program, k)].name if into_fc else None
        return PatchChoice(striped, plan, program.calls[k].name, k, n, plain.arena_bytes,
                           macs, sum(c.macs for c in striped.calls) - macs, into)

    def rebuild(c: PatchChoice) -> PatchChoice:  # exactly planned
        return build(c.split_index, c.stripes, c.into is not None, True)

    if mode == "force":
        k, into_fc = _layer_index(program, layer, candidates)
        rows = int(program.graph.tensors[program.calls[k].outputs[0]].shape[1])
        if forced_stripes > rows:
            raise EdgecError(f"--patch {option}: layer '{layer}' has {rows} output rows, "
                             f"fewer than {forced_stripes} stripes")
        return build(k, forced_stripes, into_fc, True)
    if mode == "min":
        built = [build(k, n, f, False) for _, k, n, f in options(program)]
        if not built:
            return None
        best = min(built, key=lambda c: (c.plan.arena_bytes, c.macs_extra))
        best = rebuild(best)
        return best if best.plan.arena_bytes < plain.arena_bytes else None
    # Extra MACs need no plan: try the options from the cheapest up, the first that fits
    # wins (planned with the greedy placement while searching, exactly at the end).
    best: PatchChoice | None = None
    smallest: PatchChoice | None = None
    for extra, k, n, into_fc in options(program, budget):
        if best is not None and extra > best.macs_extra:
            break  # the options as cheap as the first fit are all tried: the smallest wins
        c = build(k, n, into_fc, False)
        if c.plan.arena_bytes <= budget and (best is None
                                            or c.plan.arena_bytes < best.plan.arena_bytes):
            best = c
        if smallest is None or c.plan.arena_bytes < smallest.plan.arena_bytes:
            smallest = c
    if best is None:
        if not [k for k in candidates if k > _lead(program)[0]
                or fc_after(program, k) is not None]:
            return None
        smallest_text = (f"at best {smallest.plan.arena_bytes} B, with {smallest.stripes} "
                         f"stripes up to '{smallest.into or smallest.split}'" if smallest else
                         "the input and each striped prefix's output alone exceed it")
        raise BudgetError(f"arena needs {plain.arena_bytes} B but {board} has {budget} B for "
                          f"it, and run stripe by stripe it does not fit either "
                          f"({smallest_text}); use a board with more SRAM or a smaller model")
    return rebuild(best)
