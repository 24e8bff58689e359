"""Op order: the topological order of the calls with the smallest peak of live bytes.

    schedule(program) -> list[int]                  # call indices in execution order
    search_order(program) -> ScheduleResult          # the order, its peak, how it was found

Cost model (the layer-wise bound of toolchain/plan/arena.py, in a given order): while call c
runs, the live bytes are every activation tensor already written (graph inputs from the
start) and still needed (a later call touches it, or it is a graph output), plus c's new
outputs and its scratch. When c declares `inplace` and the aliased input dies at c, the
output shares the input's bytes, so the step costs the output's bytes less (the kernel
engineer's in-place hook; without it the cost is exactly the layer-wise bound).

Search (a state is the set of calls already run, a bitmask; it always is a downset of the
dependency order, and its live bytes depend on the set alone, not on how it was reached):
1. Beam search over the states, level by level (W best states per number of calls run, by
   peak so far, then live bytes): a good order in O(n * W * width). The original order is
   a candidate too, so the result is never worse than the model's own order.
2. Exact: a minimax Dijkstra over the states (key = the peak so far, floored at the largest
   single-call need, ties deeper first), pruned to peaks below the beam's. It either proves
   the beam optimal (nothing better is reachable), finds the optimum, or stops after
   `max_states` states; the smallest key then left open is a proven lower bound for every
   order ("heuristic" result).
3. Among the orders that reach the best peak, the one closest to the model's own order:
   a depth-first search that tries ready calls by original index (so the model's order is
   kept whenever it is optimal, and the generated C changes as little as possible).

Deterministic: no clocks, no hash-order dependence.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass

from ..errors import EdgecError
from ..lower.program import Program
from .views import view_roots

BEAM_WIDTH = 24  # states kept per level by the beam search
MAX_STATES = 5_000  # states the exact search may expand before it gives up (~15 us each)


@dataclass
class ScheduleResult:
    order: list[int]  # call indices in execution order
    peak_bytes: int  # the cost model's peak in this order (in-place credit included)
    original_peak_bytes: int  # the same in the model's own order
    method: str  # "exact" (peak proven minimal) | "heuristic" (not proven)
    bound_bytes: int  # proven lower bound of the peak over every order (= peak when exact)
    states: int  # states the exact search expanded


@dataclass
class _DepGraph:
    """The scheduling view of a program: bitmasks over call indices."""

    n: int
    preds: list[int]  # calls that must run before call i
    succs: list[int]  # calls that wait for call i
    new_bytes: list[int]  # activation bytes first written by call i
    scratch: list[int]
    # per call: (touchers mask, bytes) of the tensors it touches that may die after it
    frees: list[list[tuple[int, int]]]
    # per call: (touchers mask of the input, bytes shared) for each in-place alias
    inplace: list[list[tuple[int, int]]]
    start_bytes: int  # graph inputs, alive before the first call
    first_step_bytes: int  # graph inputs no call touches: live during the first call only
    floor_bytes: int  # max over calls of its own need: no order goes below it
    # per call: (touchers mask, bytes) of the buffers it brings to life when it is their
    # first toucher to run (buffers that several calls write, e.g. an elided concat's)
    births: list[list[tuple[int, int]]]


def build_dep_graph(program: Program, inplace: bool = True,
                    slices: dict[int, list[int]] | None = None) -> _DepGraph:
    """The scheduling view. Dependencies follow the tensor names; bytes follow the buffers:
    a view's uses, and a slice of an elided concat (`slices`, views.concat_slices), count
    as uses of their root, which comes to life with whichever of its users runs first."""
    graph = program.graph
    calls = program.calls
    n = len(calls)
    roots = view_roots(program, slices)
    by_name: dict[str, list[int]] = {}  # tensor name -> calls touching it, in call order
    touchers: dict[str, list[int]] = {}  # buffer (root) -> calls touching it
    writers: dict[str, set[int]] = {}
    for i, call in enumerate(calls):
        for name in (*call.inputs, *call.outputs):
            if name == "":
                continue
            tensor = graph.tensors.get(name)
            if tensor is None:
                raise EdgecError(f"call '{call.name}' ({call.op}) uses unknown tensor '{name}'")
            if tensor.is_const:
                continue  # constants live in flash
            for key, table in ((name, by_name), (roots.get(name, name), touchers)):
                users = table.setdefault(key, [])
                if not users or users[-1] != i:
                    users.append(i)
        for name in call.outputs:
            if name in by_name:
                writers.setdefault(name, set()).add(i)
    for name, users in by_name.items():  # read, never written, not an input: the first
        if name not in writers and name not in graph.inputs:  # reader brings it to life
            writers[name] = {users[0]}

    preds = [0] * n
    for name, users in by_name.items():
        written = writers.get(name, set())
        # writer -> later toucher, toucher -> later writer (read-after-write, write-after-read)
        for a_pos, a in enumerate(users):
            for b in users[a_pos + 1:]:
                if a in written or b in written:
                    preds[b] |= 1 << a
    succs = [0] * n
    for b in range(n):
        mask = preds[b]
        while mask:
            low = mask & -mask
            succs[low.bit_length() - 1] |= 1 << b
            mask ^= low

    outputs, inputs = {roots.get(o, o) for o in graph.outputs}, set(graph.inputs)
    new_bytes, frees = [0] * n, [[] for _ in range(n)]
    births: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    sliced = {root for name, root in roots.items()
              if graph.tensors[name].nbytes != graph.tensors[root].nbytes}
    start_bytes = first_step_bytes = 0
    masks: dict[str, int] = {}
    for name, users in touchers.items():
        mask = 0
        for i in users:
            mask |= 1 << i
        masks[name] = mask
        nbytes = graph.tensors[name].nbytes
        if name in sliced:  # written by several producers in any order
            for i in users:
                births[i].append((mask, nbytes))
        elif name not in inputs:
            new_bytes[users[0]] += nbytes
        if name not in outputs:
            for i in users:
                frees[i].append((mask, nbytes))
    for name in inputs:
        if name in graph.tensors and not graph.tensors[name].is_const:
            nbytes = graph.tensors[name].nbytes
            if name in touchers or name in outputs:
                start_bytes += nbytes
            else:
                first_step_bytes += nbytes
    for name in sorted(outputs):  # an output no call touches (an input passed through)
        if name not in touchers and name not in inputs and name in graph.tensors:
            start_bytes += graph.tensors[name].nbytes

    inplace: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for i in range(n if inplace else 0):
        for alias in alias_candidates(program, i, roots):
            if alias.src in outputs or touchers[alias.dst][0] != i or alias.dst in inputs:
                continue  # the source must die, the output must be new here
            inplace[i].append((masks[alias.src], alias.shared))

    scratch = [max(c.scratch_bytes, 0) for c in calls]
    floor = 0
    for i, call in enumerate(calls):
        own = {roots.get(t, t) for t in (*call.inputs, *call.outputs)} & touchers.keys()
        need = sum(graph.tensors[t].nbytes for t in own) + scratch[i]
        need -= sum(b for _, b in inplace[i])
        floor = max(floor, need)
    return _DepGraph(n, preds, succs, new_bytes, scratch, frees, inplace, start_bytes,
                     first_step_bytes, floor, births)


ALIAS_ALIGNMENT = 16  # the offset between an in-place output and its input: a multiple


@dataclass(frozen=True)
class Alias:
    """A declared in-place pair: `dst` (an output) placed at `src`'s offset + `shift`."""

    src: str  # the input's buffer: the input, or the root of the view the call reads
    dst: str  # the output
    shared: int  # bytes the two share (the output's last ones, the input's first ones)
    shift: int  # dst offset - src offset: 0 (same start) or negative (below, partial overlap)
    via: str = ""  # the view of `src` the call reads, when it reads one


def alias_candidates(program: Program, index: int,
                     roots: dict[str, str] | None = None) -> list[Alias]:
    """Call `index`'s declared in-place pairs that are legal in any order: both activation
    tensors, distinct, each input and each output in one pair at most; a full overlap
    needs the output no larger than the input, a partial one (inplace_overlap) shares
    whole multiples of ALIAS_ALIGNMENT bytes. An input that is a view (reshape) stands
    for its root's bytes (`roots`, from view_roots): the output may overwrite the root,
    unless the call also reads the root under another name. Whether the root dies at
    this call depends on the order and is checked by the caller."""
    call = program.calls[index]
    tensors = program.graph.tensors
    roots = view_roots(program) if roots is None else roots
    pairs: list[Alias] = []
    for out_idx, in_idx in sorted(call.inplace.items()):
        if not (0 <= out_idx < len(call.outputs) and 0 <= in_idx < len(call.inputs)):
            raise EdgecError(f"call '{call.name}' ({call.op}) declares inplace {{{out_idx}: "
                             f"{in_idx}}} but has {len(call.outputs)} outputs and "
                             f"{len(call.inputs)} inputs")
        name, dst = call.inputs[in_idx], call.outputs[out_idx]
        src = roots.get(name, name)
        if name == "" or src == dst or src in call.outputs or name in call.outputs:
            continue
        if tensors[src].is_const or tensors[dst].is_const:
            continue
        if any(t != name and roots.get(t, t) == src for t in call.inputs):
            continue  # the root is also read under another name: not safe to overwrite
        if dst in roots or tensors[src].nbytes != tensors[name].nbytes:
            continue  # a slice of an elided concat: not a buffer of its own
        via = name if name != src else ""
        if any(src == a.src or dst == a.dst for a in pairs):
            continue
        src_bytes, dst_bytes = tensors[src].nbytes, tensors[dst].nbytes
        overlap = call.inplace_overlap.get(out_idx)
        if overlap is None or (overlap >= dst_bytes and dst_bytes <= src_bytes):
            if dst_bytes <= src_bytes and dst_bytes > 0:
                pairs.append(Alias(src, dst, dst_bytes, 0, via))
            continue
        if overlap < 0:
            raise EdgecError(f"call '{call.name}' ({call.op}) declares a negative "
                             f"inplace_overlap for output {out_idx}")
        # the output's start, below the input's, rounded down to keep both aligned
        below = -(-(dst_bytes - min(overlap, src_bytes)) // ALIAS_ALIGNMENT) * ALIAS_ALIGNMENT
        shared = dst_bytes - below
        if shared > 0:
            pairs.append(Alias(src, dst, shared, -below, via))
    return pairs


# ---- cost of one step ------------------------------------------------------------------------

def _step(g: _DepGraph, done: int, alive: int, c: int) -> tuple[int, int]:
    """(live bytes while call c runs after the calls in `done`, live bytes after it)."""
    after = done | (1 << c)
    born = g.new_bytes[c]
    for mask, nbytes in g.births[c]:
        if mask & done == 0:  # the first of its touchers to run
            born += nbytes
    cost = alive + born + g.scratch[c]
    if done == 0:
        cost += g.first_step_bytes
    for src_mask, shared in g.inplace[c]:
        if src_mask & ~after == 0:  # the aliased input dies here: they share bytes
            cost -= shared
    freed = 0
    for mask, nbytes in g.frees[c]:
        if mask & ~after == 0:  # c was its last toucher
            freed += nbytes
    return cost, alive + born - freed


def _ready(g: _DepGraph, done: int) -> int:
    ready = 0
    for c in range(g.n):
        if not done >> c & 1 and g.preds[c] & ~done == 0:
            ready |= 1 << c
    return ready


def _next_ready(g: _DepGraph, done: int, ready: int, c: int) -> int:
    after = done | (1 << c)
    ready &= ~(1 << c)
    succ = g.succs[c]
    while succ:
        low = succ & -succ
        s = low.bit_length() - 1
        if g.preds[s] & ~after == 0:
            ready |= low
        succ ^= low
    return ready


def _bits(mask: int):
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


def order_peak(g: _DepGraph, order: list[int]) -> int:
    done, alive, peak = 0, g.start_bytes, 0
    for c in order:
        cost, alive = _step(g, done, alive, c)
        peak = max(peak, cost)
        done |= 1 << c
    return peak


# ---- search --------------------------------------------------------------------------------
# Every function below searches one segment: from the state `start` (calls run, `alive` live
# bytes) to the state `goal`, a superset. Segments end at cut calls (see _segments).

@dataclass
class _Segment:
    start: int
    goal: int
    alive: int  # live bytes at `start`
    calls: list[int]  # its calls in the original order


def _segments(g: _DepGraph) -> list[_Segment]:
    """Split at cut calls: a call that every other call precedes or follows in every order.

    Every order runs exactly the same set of calls before a cut call, so the live bytes
    there are fixed and the segments between cuts are independent problems.
    """
    full = (1 << g.n) - 1
    anc = [0] * g.n
    for c in range(g.n):  # the original order is topological: preds have lower indices
        for p in _bits(g.preds[c]):
            anc[c] |= anc[p] | (1 << p)
    desc = [0] * g.n
    for c in range(g.n - 1, -1, -1):
        for s in _bits(g.succs[c]):
            desc[c] |= desc[s] | (1 << s)
    segments, start, alive = [], 0, g.start_bytes
    for c in range(g.n):
        if anc[c] | desc[c] | (1 << c) != full:
            continue
        goal = anc[c] | (1 << c)
        calls = list(_bits(goal & ~start))
        segments.append(_Segment(start, goal, alive, calls))
        done = start
        for k in calls:
            alive = _step(g, done, alive, k)[1]
            done |= 1 << k
        start = goal
    if start != full:
        segments.append(_Segment(start, full, alive, list(_bits(full & ~start))))
    return segments


def _walk(g: _DepGraph, seg: _Segment, order: list[int]) -> int:
    done, alive, peak = seg.start, seg.alive, 0
    for c in order:
        cost, alive = _step(g, done, alive, c)
        peak = max(peak, cost)
        done |= 1 << c
    return peak


def _beam(g: _DepGraph, seg: _Segment, width: int) -> tuple[int, list[int]]:
    """Level-by-level beam search; returns (peak, order)."""
    # a state: mask -> (peak, alive, ready, parent mask, call)
    level = {seg.start: (0, seg.alive, _ready(g, seg.start), -1, -1)}
    history = [level]
    for _ in seg.calls:
        nxt: dict[int, tuple] = {}
        for done, (peak, alive, ready, _, _) in level.items():
            for c in _bits(ready):
                cost, after_alive = _step(g, done, alive, c)
                mask = done | (1 << c)
                old = nxt.get(mask)
                if old is None or max(peak, cost) < old[0]:
                    nxt[mask] = (max(peak, cost), after_alive, _next_ready(g, done, ready, c),
                                 done, c)
        if len(nxt) > width:
            nxt = dict(sorted(nxt.items(), key=lambda kv: (kv[1][0], kv[1][1], kv[0]))[:width])
        level = nxt
        history.append(level)
    order, mask = [], seg.goal
    for depth in range(len(seg.calls), 0, -1):
        _, _, _, parent, c = history[depth][mask]
        order.append(c)
        mask = parent
    return history[-1][seg.goal][0], order[::-1]


def _exact(g: _DepGraph, seg: _Segment, upper: int, floor: int, max_states: int
           ) -> tuple[list[int] | None, int, int]:
    """Minimax Dijkstra over the segment's states, only peaks below `upper`; peaks up to
    `floor` (a known lower bound of the whole problem) count as equally good.

    Returns (order, bound, states expanded):
    - (order, peak) when a peak below `upper` exists (the least, or any <= floor),
    - (None, upper) when none does: `upper` is optimal,
    - (None, bound) with bound < upper when the budget ran out: not proven.
    """
    heap = [(floor, 0, seg.start)]  # (key, -calls run, mask): deeper first on ties
    info = {seg.start: (seg.alive, _ready(g, seg.start), -1, -1)}
    best = {seg.start: floor}
    expanded = 0
    while heap:
        key, _, done = heapq.heappop(heap)
        if best[done] < key:
            continue  # a stale entry
        if done == seg.goal:
            order, mask = [], done
            while mask != seg.start:
                _, _, parent, c = info[mask]
                order.append(c)
                mask = parent
            return order[::-1], key, expanded
        if expanded >= max_states:
            return None, key, expanded
        expanded += 1
        alive, ready = info[done][:2]
        for c in _bits(ready):
            cost, after_alive = _step(g, done, alive, c)
            new_key = max(key, cost)
            mask = done | (1 << c)
            if new_key < best.get(mask, upper):
                best[mask] = new_key
                info[mask] = (after_alive, _next_ready(g, done, ready, c), done, c)
                heapq.heappush(heap, (new_key, -mask.bit_count(), mask))
    return None, upper, expanded


def _closest_order(g: _DepGraph, seg: _Segment, limit: int, max_states: int
                   ) -> list[int] | None:
    """Depth-first, ready calls by original index: the first order with peak <= limit,
    or None when the budget runs out."""
    dead: set[int] = set()
    order: list[int] = []
    visits = 0
    first_ready = _ready(g, seg.start)
    # explicit stack: (done, alive, ready, candidates left)
    stack = [(seg.start, seg.alive, first_ready, list(_bits(first_ready))[::-1])]
    while stack:
        done, alive, ready, todo = stack[-1]
        if done == seg.goal:
            return order
        while todo:
            c = todo.pop()
            mask = done | (1 << c)
            if mask in dead:
                continue
            cost, after_alive = _step(g, done, alive, c)
            if cost > limit:
                continue
            visits += 1
            if visits > max_states:
                return None
            nready = _next_ready(g, done, ready, c)
            stack.append((mask, after_alive, nready, list(_bits(nready))[::-1]))
            order.append(c)
            break
        else:
            dead.add(done)
            stack.pop()
            if order:
                order.pop()
    return None


def search_order(program: Program, *, inplace: bool = True, max_states: int = MAX_STATES,
                 beam_width: int = BEAM_WIDTH,
                 slices: dict[int, list[int]] | None = None) -> ScheduleResult:
    """The order with the smallest peak of live bytes (see module doc).

    inplace=False: ignore KernelCall.inplace (plan the layer-wise bound alone)."""
    g = build_dep_graph(program, inplace, slices)
    original = list(range(g.n))
    original_peak = order_peak(g, original)
    segments = _segments(g)
    budget = max_states
    floor = g.floor_bytes  # a proven lower bound of the best peak, raised as we go
    proven = True
    best_orders: list[list[int]] = []
    results = []
    for seg in segments:
        peak, order = _beam(g, seg, beam_width)
        own = _walk(g, seg, seg.calls)
        if own <= peak:
            peak, order = own, seg.calls
        results.append([peak, order])
    # the worst segments first: their optimum raises the floor the others need not beat
    for k in sorted(range(len(segments)), key=lambda k: -results[k][0]):
        seg, (peak, order) = segments[k], results[k]
        if peak <= floor:
            continue
        found, bound, states = _exact(g, seg, peak, floor, max(budget, 0))
        budget -= states
        if found is not None:
            results[k] = [max(_walk(g, seg, found), floor), found]
            floor = max(floor, results[k][0])
        elif bound >= peak:
            floor = max(floor, peak)
        else:
            proven = False
            floor = max(floor, bound)
    best = max((r[0] for r in results), default=0)
    for seg, (peak, order) in zip(segments, results):
        close = _closest_order(g, seg, best, max(budget, len(seg.calls)))
        best_orders.append(close if close is not None else order)
    order = [c for part in best_orders for c in part]
    peak = order_peak(g, order)
    return ScheduleResult(order, peak, original_peak, "exact" if proven else "heuristic",
                          peak if proven else floor, max_states - budget)


def schedule(program: Program, **kwargs) -> list[int]:
    """Call indices in the execution order with the smallest peak of live bytes."""
    return search_order(program, **kwargs).order
