"""Static arena planning: call order + tensor lifetimes -> byte offsets in one buffer.

    plan_memory(program) -> Plan

1. Order (schedule.py): the topological order of the calls with the smallest peak of live
   bytes (exact search, or a heuristic with a proven bound on large graphs); the model's own
   order whenever it is already optimal. `Plan.order` lists the call indices in execution
   order; codegen emits the calls in that order. Below, a "step" is a position in it.
2. Lifetimes over the steps: a tensor lives from the first step that names it (in its
   inputs or outputs) to the last one; graph inputs from step 0, graph outputs to the last
   step. A call's scratch buffer lives during its step only. A call's inputs, outputs and
   scratch are all live at its step.
3. Lower bound: the largest sum of simultaneously live bytes at any step, in the chosen
   order (`lower_bound_bytes`) and in the model's own order (`lower_bound_original_bytes`).
   No placement in that order can do better without in-place execution.
   `lower_bound_activations_bytes` counts activation tensors only (no scratch): the
   layer-wise bound of other tools (TFLM's planner, anchors.md).
4. In place (KernelCall.inplace, {output index: input index}): when the call is the input's
   last toucher, the input is no graph output and the output is new at that step and no
   larger, the output takes the input's offset (the two form one block; their lifetimes
   touch at that step). An input that is a view (reshape) stands for its root's bytes:
   the output may take them when the root dies at that call. So the arena may go below
   the lower bound;
   `lower_bound_inplace_bytes` is the bound with those bytes shared.
5. Placement (placement.py): greedy in a few orders (TFLM's largest-first among them), then
   a MILP for small problems; the smaller arena wins (`method`). Alignment: offsets of
   buffers of 16 B or more are multiples of 16 (a Cortex-M7 cache line is 32 B; 16 keeps
   LDRD/LDM and any future 128-bit vector loads aligned); smaller buffers are word aligned
   (4). The arena itself must be 16-byte aligned (codegen's job).
6. arena_bytes = the largest end offset; when it exceeds the (in-place) bound, `gap_bytes`
   and `gap_reason` say by how much and why.

Pure and deterministic. A 100-call network plans in tens of milliseconds (the exact order
search and the MILP have deterministic budgets, see schedule.py and placement.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import EdgecError
from ..lower.program import Program
from . import placement as placing
from .schedule import alias_candidates, search_order
from .views import buffer_roots, concat_slices, view_roots

ALIGNMENT = 16  # offset alignment of buffers >= ALIGNMENT bytes
SMALL_ALIGNMENT = 4  # offset alignment of smaller buffers


@dataclass
class Plan:
    offsets: dict[str, int]  # activation tensor name -> byte offset in the arena
    scratch_offsets: dict[int, int]  # call index -> offset of its scratch buffer
    arena_bytes: int  # size of the one static buffer
    lower_bound_bytes: int  # largest sum of simultaneously live bytes, in `order`
    # one entry per placed buffer: {"name", "kind", "first", "last", "offset", "bytes",
    # "alias_of"}: first/last are steps (positions in `order`; graph inputs start at 0,
    # outputs end at the last step); kind "tensor" | "scratch" (named "<call name>:scratch",
    # with "call": its call index); alias_of: the input whose bytes an in-place output
    # takes over (at the offset given by `inplace`; the pair is live together at that one
    # step), else None.
    timeline: list[dict] = field(default_factory=list)
    naive_bytes: int = 0  # every buffer at its own offset (no reuse), aligned
    alignment: int = ALIGNMENT
    # call indices in execution order; None = the program's own order (hand-made plans):
    # use execution_order(len(program.calls))
    order: list[int] | None = None
    lower_bound_original_bytes: int | None = None  # the bound in the program's own order
    lower_bound_inplace_bytes: int | None = None  # the bound in `order` with in-place sharing
    # a proven lower bound of lower_bound_inplace_bytes over every order (= it when
    # order_method is "exact"; smaller when the search gave up on a large graph)
    lower_bound_any_order_bytes: int | None = None
    order_method: str = "original"  # "original" (not searched) | "exact" | "heuristic"
    method: str = "greedy"  # placement that won: "greedy" | "milp" | "naive" (reuse off)
    greedy_arena_bytes: int | None = None  # the best greedy placement's arena
    placement_note: str = ""  # e.g. "MILP proved the greedy arena optimal"
    gap_bytes: int = 0  # arena_bytes - lower_bound_inplace_bytes (0: the arena is optimal)
    gap_reason: str = ""  # why the arena exceeds the bound, when it does
    # in-place aliases applied: {"call", "step", "input", "output", "bytes", "shift"}:
    # bytes shared; shift = output offset - input offset (0, or < 0 for a partial overlap)
    inplace: list[dict] = field(default_factory=list)
    # the bound of activation tensors alone (no scratch), in `order`: the layer-wise bound
    # as anchors.md defines it; lower_bound_bytes adds the kernels' scratch buffers
    lower_bound_activations_bytes: int | None = None
    # elided concats: {call index: byte offset of each input in the output}; their
    # producers write into the output directly and the call runs no code (views.py)
    zero_copy: dict[int, list[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.lower_bound_activations_bytes is None:
            self.lower_bound_activations_bytes = self.lower_bound_bytes
        if self.lower_bound_original_bytes is None:
            self.lower_bound_original_bytes = self.lower_bound_bytes
        if self.lower_bound_inplace_bytes is None:
            self.lower_bound_inplace_bytes = self.lower_bound_bytes

    def execution_order(self, num_calls: int) -> list[int]:
        """Call indices in the order codegen must emit them."""
        return list(self.order) if self.order is not None else list(range(num_calls))


@dataclass
class _Buffer:
    name: str
    kind: str  # "tensor" | "scratch"
    first: int
    last: int
    nbytes: int
    call: int = -1  # scratch: its call index
    offset: int = -1
    alias_of: str | None = None
    alias_shift: int = 0  # offset - the offset of alias_of

    def lives_with(self, other: _Buffer) -> bool:
        return self.first <= other.last and other.first <= self.last


def _align_of(nbytes: int) -> int:
    return ALIGNMENT if nbytes >= ALIGNMENT else SMALL_ALIGNMENT


def _align_up(value: int, alignment: int) -> int:
    return (value + alignment - 1) // alignment * alignment


def buffer_lifetimes(program: Program, order: list[int] | None = None,
                     slices: dict[int, list[int]] | None = None) -> list[_Buffer]:
    """Every activation tensor and scratch buffer with its [first, last] step in `order`
    (default: the program's own order). A view's uses, and those of an elided concat's
    slice (`slices`), count as uses of their root."""
    graph = program.graph
    order = list(range(len(program.calls))) if order is None else order
    last_step = max(len(order) - 1, 0)
    spans: dict[str, list[int]] = {}
    roots = view_roots(program, slices)

    def touch(name: str, step: int, where: str) -> None:
        if name == "":
            return
        name = roots.get(name, name)
        tensor = graph.tensors.get(name)
        if tensor is None:
            raise EdgecError(f"{where} uses unknown tensor '{name}'")
        if tensor.is_const:
            return  # constants live in flash, not in the arena
        span = spans.setdefault(name, [step, step])
        span[0] = min(span[0], step)
        span[1] = max(span[1], step)

    for name in graph.inputs:
        touch(name, 0, "graph input")
    for step, i in enumerate(order):
        call = program.calls[i]
        for name in (*call.inputs, *call.outputs):
            touch(name, step, f"call '{call.name}' ({call.op})")
    for name in graph.outputs:
        touch(name, last_step, "graph output")
        name = roots.get(name, name)
        if name in spans:
            spans[name][1] = last_step

    buffers = [_Buffer(name, "tensor", first, last, graph.tensors[name].nbytes)
               for name, (first, last) in spans.items()]
    for step, i in enumerate(order):
        call = program.calls[i]
        if call.scratch_bytes < 0:
            raise EdgecError(f"call '{call.name}' ({call.op}) has negative scratch_bytes")
        if call.scratch_bytes > 0:
            buffers.append(_Buffer(f"{call.name}:scratch", "scratch", step, step,
                                   call.scratch_bytes, call=i))
    return buffers


def live_bytes(buffers: list[_Buffer], num_steps: int) -> list[int]:
    """Sum of live bytes at each step."""
    steps = max(num_steps, 1)
    delta = [0] * (steps + 1)
    for b in buffers:  # difference array over steps
        delta[b.first] += b.nbytes
        delta[b.last + 1] -= b.nbytes
    live, running = [], 0
    for i in range(steps):
        running += delta[i]
        live.append(running)
    return live


def lower_bound(buffers: list[_Buffer], num_calls: int) -> int:
    """Largest sum of simultaneously live bytes at any step."""
    return max(live_bytes(buffers, num_calls))


def _apply_inplace(program: Program, order: list[int], buffers: list[_Buffer],
                   slices: dict[int, list[int]] | None = None) -> list[dict]:
    """Mark in-place outputs (alias_of, alias_shift) where legal in this order; returns
    the aliases applied."""
    by_name = {b.name: b for b in buffers if b.kind == "tensor"}
    roots = view_roots(program, slices)
    outputs = {roots.get(o, o) for o in program.graph.outputs}
    inputs = set(program.graph.inputs)
    sources: set[str] = set()
    applied = []
    for step, i in enumerate(order):
        for alias in alias_candidates(program, i, roots):
            src, dst = alias.src, alias.dst
            s, d = by_name.get(src), by_name.get(dst)
            if s is None or d is None or src in sources or d.alias_of is not None:
                continue
            if src in outputs or s.last != step:
                continue  # the input is read later (or is the user's output)
            if dst in inputs or d.first != step:
                continue  # the output must come into being here
            d.alias_of, d.alias_shift = src, alias.shift
            sources.add(src)
            applied.append({"call": i, "step": step, "input": src, "output": dst,
                            "bytes": alias.shared, "shift": alias.shift}
                           | ({"view": alias.via} if alias.via else {}))
    return applied


def _blocks(buffers: list[_Buffer]
            ) -> tuple[list[placing.Block], list[list[tuple[_Buffer, int]]]]:
    """In-place chains become one block (members at fixed offsets from each other);
    every other buffer is its own block. Returns the blocks and, per block, its members
    with their offsets inside it."""
    by_name = {b.name: b for b in buffers if b.kind == "tensor"}

    def root_and_shift(name: str) -> tuple[str, int]:
        shift = 0
        while by_name[name].alias_of is not None:
            shift += by_name[name].alias_shift
            name = by_name[name].alias_of
        return name, shift

    groups: dict[str, list[tuple[_Buffer, int]]] = {}
    for b in buffers:
        if b.nbytes == 0:
            continue
        key, shift = root_and_shift(b.name) if b.kind == "tensor" else (b.name, 0)
        groups.setdefault(key, []).append((b, shift))
    members = []
    for group in groups.values():  # offsets inside the block start at 0
        low = min(shift for _, shift in group)
        members.append([(b, shift - low) for b, shift in group])
    blocks = [placing.Block(key, [(b.first, b.last, b.nbytes, rel) for b, rel in group],
                            max(_align_of(b.nbytes) for b, _ in group))
              for key, group in zip(groups, members)]
    return blocks, members


def plan_memory(program: Program, reuse: bool = True, *, reorder: bool = True,
                inplace: bool = True, exact: bool = True, concat: bool = True) -> Plan:
    """Order the calls and place every activation tensor and scratch buffer in one arena.

    reuse=False (debug switch) gives every buffer its own bytes in the program's order:
    the naive arena. reorder / inplace / exact / concat switch off the order search, the
    in-place aliases, the MILP and the zero-copy concatenation (for comparisons and
    debugging).
    """
    n = len(program.calls)
    original = list(range(n))
    slices = concat_slices(program) if reuse and concat else {}
    order, order_method, searched_bound = original, "original", None
    if reuse and reorder and n > 1:
        searched = search_order(program, inplace=inplace, slices=slices)
        order, order_method, searched_bound = searched.order, searched.method, searched.bound_bytes
    buffers = buffer_lifetimes(program, order, slices)
    bound = lower_bound(buffers, n)
    bound_activations = lower_bound([b for b in buffers if b.kind == "tensor"], n)
    bound_original = bound if order == original else \
        lower_bound(buffer_lifetimes(program, None, slices), n)
    aliases = _apply_inplace(program, order, buffers, slices) if reuse and inplace else []

    naive = 0
    for b in buffers:
        naive = _align_up(naive, _align_of(b.nbytes)) + b.nbytes
    live = live_bytes(buffers, n)
    for a in aliases:  # the output shares its input's bytes at the hand-over step
        live[a["step"]] -= a["bytes"]
    bound_inplace = max(live)
    any_order_bound = None  # the search minimizes the in-place bound over the orders
    if searched_bound is not None:
        any_order_bound = bound_inplace if order_method == "exact" else searched_bound

    if reuse:
        blocks, members = _blocks(buffers)
        placed = placing.place(blocks, bound_inplace, exact=exact)
        for group, offset in zip(members, placed.offsets):
            for b, rel in group:
                b.offset = offset + rel
        method, greedy_arena, note = placed.method, placed.greedy_arena_bytes, placed.note
        aligned = placed.bound_bytes
    else:
        offset = 0
        for b in buffers:
            offset = _align_up(offset, _align_of(b.nbytes))
            b.offset = offset
            offset += b.nbytes
        method, greedy_arena, note = "naive", None, "reuse off: every buffer its own bytes"
        aligned = bound_inplace
    for b in buffers:
        if b.nbytes == 0:
            b.offset = 0

    timeline = [{"name": b.name, "kind": b.kind, "first": b.first, "last": b.last,
                 "offset": b.offset, "bytes": b.nbytes, "alias_of": b.alias_of}
                | ({"call": b.call} if b.kind == "scratch" else {})
                for b in sorted(buffers, key=lambda b: (b.first, b.offset, b.name))]
    arena = max((b.offset + b.nbytes for b in buffers), default=0)
    gap = max(arena - bound_inplace, 0)
    reason = ""
    if gap and not reuse:
        reason = "no reuse: every buffer has its own bytes (the reuse=False debug switch)"
    elif gap:
        names = [program.calls[i].name for i in order]
        reason = explain_gap(timeline, arena, aligned, live, names) + f" ({note})"
    offsets = {b.name: b.offset for b in buffers if b.kind == "tensor"}
    offsets.update({name: offsets[root] + start
                    for name, (root, start) in buffer_roots(program, slices).items()
                    if root in offsets})
    return Plan(
        offsets=offsets,
        scratch_offsets={b.call: b.offset for b in buffers if b.kind == "scratch"},
        arena_bytes=arena,
        lower_bound_bytes=bound,
        timeline=timeline,
        naive_bytes=naive,
        order=order,
        lower_bound_original_bytes=bound_original,
        lower_bound_inplace_bytes=bound_inplace,
        lower_bound_any_order_bytes=any_order_bound,
        order_method=order_method,
        method=method,
        greedy_arena_bytes=greedy_arena,
        placement_note=note,
        gap_bytes=gap,
        gap_reason=reason,
        inplace=aliases,
        lower_bound_activations_bytes=bound_activations,
        zero_copy={i: list(starts) for i, starts in slices.items()},
    )


def explain_gap(timeline: list[dict], arena: int, aligned_bound: int, live: list[int],
                step_names: list[str]) -> str:
    """Why the arena exceeds the live bytes. Alignment: the padding between buffers that
    any aligned placement needs (`aligned_bound`, placement.aligned_bound). Fragmentation:
    at the step where the buffer at the top of the arena has the fewest free bytes under
    it, which buffers of other steps hold those bytes."""
    def where(step: int) -> str:
        return f"step {step} ('{step_names[step]}')" if step < len(step_names) else \
            f"step {step}"

    padding = aligned_bound - max(live)
    if arena <= aligned_bound:
        step = max(range(len(live)), key=lambda s: (live[s], -s))
        return (f"alignment: {arena - max(live):,} B of padding to {ALIGNMENT} B / "
                f"{SMALL_ALIGNMENT} B offsets between the buffers live at {where(step)}")
    top = max((e for e in timeline if e["bytes"]),
              key=lambda e: (e["offset"] + e["bytes"], -e["first"]))
    step = min(range(top["first"], top["last"] + 1), key=lambda s: (arena - live[s], s))
    covered = sorted((e["offset"], e["offset"] + e["bytes"]) for e in timeline
                     if e["bytes"] and e["first"] <= step <= e["last"])
    holes, cursor = [], 0
    for lo, hi in covered:
        if lo > cursor:
            holes.append((cursor, lo))
        cursor = max(cursor, hi)
    if cursor < arena:
        holes.append((cursor, arena))
    free = sum(hi - lo for lo, hi in holes)
    blockers = []
    for e in timeline:
        if not e["bytes"] or e["first"] <= step <= e["last"]:
            continue
        lo, hi = e["offset"], e["offset"] + e["bytes"]
        inside = sum(max(0, min(hi, h) - max(lo, l)) for l, h in holes)
        if inside:
            blockers.append((-inside, e["name"], e["first"], e["last"]))
    blockers.sort()
    held = ", ".join(f"'{name}' (steps {first}-{last})"
                     for _, name, first, last in blockers[:2])
    text = (f"fragmentation: at {where(step)} {live[step]:,} B are live but "
            f"'{top['name']}' ends at {arena:,} B: {free:,} B under it are free there"
            + (f", held for other steps by {held}" if held else ""))
    if padding > 0:
        text += f"; {padding:,} B of the gap is alignment padding any placement needs"
    return text


def find_overlaps(plan: Plan) -> list[tuple[str, str]]:
    """Pairs of timeline entries that are live together and share bytes (must be empty).
    An in-place pair (alias_of) may, at its hand-over step: the output starting on its
    input, or below it with its end inside the input (a partial overlap)."""
    entries = [e for e in plan.timeline if e["bytes"] > 0]
    clashes = []
    for i, a in enumerate(entries):
        for b in entries[i + 1:]:
            live_together = a["first"] <= b["last"] and b["first"] <= a["last"]
            share_bytes = (a["offset"] < b["offset"] + b["bytes"]
                           and b["offset"] < a["offset"] + a["bytes"])
            src, dst = (a, b) if b.get("alias_of") == a["name"] else (b, a)
            if dst.get("alias_of") == src["name"] and dst["first"] == src["last"] \
                    and dst["offset"] <= src["offset"] < dst["offset"] + dst["bytes"] \
                    and (dst["offset"] == src["offset"] or
                         dst["offset"] + dst["bytes"] <= src["offset"] + src["bytes"]):
                continue  # in place: the output starts on its input, or ends inside it
            if live_together and share_bytes:
                clashes.append((a["name"], b["name"]))
    return clashes
