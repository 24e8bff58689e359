"""Placement: a byte offset for every block so that blocks live at the same step never share
bytes (rectangle packing: x = call steps, y = arena bytes), in the smallest arena.

    place(blocks, lower_bound) -> Placement

A block is one buffer, or an in-place group (a tensor and the outputs that overwrite it,
see arena.py): several (first step, last step, bytes, rel) segments placed together, each
taking [offset + rel, offset + rel + bytes) during its steps.

1. Greedy (TFLM's GreedyMemoryPlanner, the baseline): blocks one by one, each at the lowest
   aligned offset that clashes with no placed block; tried in a few orders (largest first,
   as TFLM; largest area first; earliest start first; longest lived first), the smallest
   arena kept (ties: the earlier order).
2. Exact, for small problems: a MILP (scipy.optimize.milp, HiGHS). Variables: the offset of
   each block in alignment units, one binary per pair of blocks live at a common step (which
   of the two is below), and the arena size A. Big-M non-overlap: o_i + s_i <= o_j + M z and
   o_j + s_j <= o_i + M (1 - z), M = the greedy arena; o_i + s_i <= A; and
   lower_bound <= A <= greedy - 1, so it only looks for a strictly smaller arena: "infeasible"
   proves the greedy arena optimal. Bounded by a node limit (deterministic) and, as a safety
   net only, a time limit. Skipped when SciPy is missing or the problem is large.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOCAL_ROUNDS = 30  # squeaky-wheel rounds per greedy order
LOCAL_WORK = 6_000  # rounds x (blocks + pairs) per greedy order, to bound the time
MILP_MAX_BLOCKS = 40  # larger problems keep the greedy / local search placement
MILP_MAX_PAIRS = 200
MILP_NODE_LIMIT = 60  # branch-and-bound nodes: the deterministic budget
MILP_TIME_LIMIT_S = 1.0  # safety net; when it fires the result may depend on the machine
MILP_MIN_GAP_FRACTION = 0.005  # a gap above the bound below which the MILP is not worth
#                                its time (~0.1 s): this fraction of the bound


@dataclass
class Block:
    name: str  # its first member, for deterministic ties and messages
    # (first step, last step, bytes, offset inside the block); a 3-tuple means offset 0
    segments: list[tuple[int, ...]]
    align: int  # of the block's offset; the offsets inside it are multiples of it

    def __post_init__(self) -> None:
        self.segments = [tuple(s) if len(s) == 4 else (*s, 0) for s in self.segments]

    @property
    def nbytes(self) -> int:
        """Its extent: from its offset to the end of its highest segment."""
        return max(s[3] + s[2] for s in self.segments)

    @property
    def first(self) -> int:
        return min(s[0] for s in self.segments)

    @property
    def last(self) -> int:
        return max(s[1] for s in self.segments)


@dataclass
class Placement:
    offsets: list[int]  # per block
    arena_bytes: int
    method: str  # "greedy" | "local search" | "milp"
    greedy_arena_bytes: int
    note: str  # what the exact method did, e.g. "MILP proved the greedy arena optimal"
    proven: bool  # no smaller arena exists for these blocks
    greedy_variant: str = ""  # which greedy order gave the greedy arena
    bound_bytes: int = 0  # the lower bound used: live bytes and alignment padding


def _align_up(value: int, alignment: int) -> int:
    return (value + alignment - 1) // alignment * alignment


def aligned_bound(blocks: list[Block]) -> int:
    """A lower bound of any aligned placement: the largest, over steps, of the live bytes
    plus the alignment padding that must sit between them.

    Sorted by offset, a block is followed by a gap of at least its padding to its own
    alignment, except the top one and a 16-aligned block followed by a word-aligned one;
    there are at most (word-aligned blocks + 1) exceptions, so the largest that many
    paddings are left out.
    """
    per_step: dict[int, list[tuple[int, int]]] = {}
    for b in blocks:
        spans: dict[int, tuple[int, int]] = {}  # step -> lowest, highest live byte
        for first, last, nbytes, rel in b.segments:
            for step in range(first, last + 1):
                lo, hi = spans.get(step, (rel, rel + nbytes))
                spans[step] = (min(lo, rel), max(hi, rel + nbytes))
        for step, (lo, hi) in spans.items():  # live members of a block touch or overlap
            per_step.setdefault(step, []).append((hi - lo, b.align))
    best = 0
    for live in per_step.values():
        pads = sorted((_align_up(n, a) - n for n, a in live), reverse=True)
        small = sum(1 for _, a in live if a < max(a for _, a in live))
        best = max(best, sum(n for n, _ in live) + sum(pads[small + 1:]))
    return best


def conflicts(blocks: list[Block]) -> list[tuple[int, int, int, int]]:
    """(i, j, d_ij, d_ji) for every pair live at a common step: with i below j,
    offset_j - offset_i >= d_ij; with j below i, offset_i - offset_j >= d_ji. For plain
    buffers d_ij is i's size. (Every segment pair that lives together must not share
    bytes, and a pair of blocks is kept in one order: a safe simplification.)"""
    spans = sorted(range(len(blocks)), key=lambda i: blocks[i].first)
    pairs = []
    for pos, i in enumerate(spans):
        bi = blocks[i]
        last_i = bi.last
        for j in spans[pos + 1:]:
            bj = blocks[j]
            if bj.first > last_i:
                break
            size_i = size_j = None
            for f1, l1, s1, r1 in bi.segments:
                for f2, l2, s2, r2 in bj.segments:
                    if f1 <= l2 and f2 <= l1:
                        d_ij, d_ji = r1 + s1 - r2, r2 + s2 - r1
                        size_i = d_ij if size_i is None else max(size_i, d_ij)
                        size_j = d_ji if size_j is None else max(size_j, d_ji)
            if size_i is not None:
                a, b = (i, j) if i < j else (j, i)
                pairs.append((a, b, size_i, size_j) if a == i else (a, b, size_j, size_i))
    pairs.sort()
    return pairs


GREEDY_ORDERS = {
    "largest first": lambda b: (-b.nbytes, b.first, b.name),
    "largest area first": lambda b: (-b.nbytes * (b.last - b.first + 1), b.first, b.name),
    "earliest first": lambda b: (b.first, -b.nbytes, b.name),
    "longest lived first": lambda b: (-(b.last - b.first), -b.nbytes, b.first, b.name),
}


def _neighbours(blocks: list[Block], pairs: list[tuple[int, int, int, int]]
                ) -> list[list[tuple[int, int, int]]]:
    neighbours: list[list[tuple[int, int, int]]] = [[] for _ in blocks]
    for i, j, si, sj in pairs:
        neighbours[i].append((j, si, sj))
        neighbours[j].append((i, sj, si))
    return neighbours


def greedy(blocks: list[Block], pairs: list[tuple[int, int, int, int]],
           key=GREEDY_ORDERS["largest first"]) -> list[int]:
    """Offsets: each block in `key` order at the lowest aligned offset that fits."""
    return _greedy_in(blocks, _neighbours(blocks, pairs),
                      sorted(range(len(blocks)), key=lambda i: key(blocks[i])))


def _greedy_in(blocks: list[Block], neighbours: list[list[tuple[int, int, int]]],
               sequence: list[int]) -> list[int]:
    offsets = [-1] * len(blocks)
    for b in sequence:
        # (neighbour offset, bytes of b that must end below it, its bytes above which b may
        # start): with in-place groups the bytes differ from neighbour to neighbour
        taken = [(offsets[j], own, other) for j, own, other in neighbours[b]
                 if offsets[j] >= 0]
        align = blocks[b].align
        # the lowest feasible offset is 0 or the aligned end of a placed neighbour
        for candidate in sorted({0} | {_align_up(max(off + other, 0), align)
                                       for off, _, other in taken}):
            if all(candidate + own <= off or candidate >= off + other
                   for off, own, other in taken):
                offsets[b] = candidate
                break
    return offsets


def squeaky_wheel(blocks: list[Block], pairs: list[tuple[int, int, int, int]],
                  sequence: list[int], rounds: int) -> tuple[int, list[int]]:
    """Local improvement of a greedy order: the blocks that end at the top of the arena
    move to the front of the order, and greedy runs again; the best arena is kept."""
    neighbours = _neighbours(blocks, pairs)
    best_offsets = _greedy_in(blocks, neighbours, sequence)
    best = arena_of(blocks, best_offsets)
    seen = {tuple(sequence)}
    for _ in range(rounds):
        offsets = _greedy_in(blocks, neighbours, sequence)
        arena = arena_of(blocks, offsets)
        if arena < best:
            best, best_offsets = arena, offsets
        top = [b for b in sequence if offsets[b] + blocks[b].nbytes == arena]
        head = [b for b in sequence if b in top]
        sequence = head + [b for b in sequence if b not in top]
        if tuple(sequence) in seen:
            break
        seen.add(tuple(sequence))
    return best, best_offsets


def arena_of(blocks: list[Block], offsets: list[int]) -> int:
    return max((o + b.nbytes for b, o in zip(blocks, offsets)), default=0)


def is_valid(blocks: list[Block], offsets: list[int],
             pairs: list[tuple[int, int, int, int]]) -> bool:
    for b, o in zip(blocks, offsets):
        if o < 0 or o % b.align:
            return False
    return all(offsets[i] + si <= offsets[j] or offsets[j] + sj <= offsets[i]
               for i, j, si, sj in pairs)


def milp(blocks: list[Block], pairs: list[tuple[int, int, int, int]], lower_bound: int,
         upper: int, node_limit: int = MILP_NODE_LIMIT,
         time_limit: float = MILP_TIME_LIMIT_S) -> tuple[list[int] | None, str, bool]:
    """Offsets of an arena smaller than `upper`, if the MILP finds one.

    Returns (offsets or None, note, proven): proven = the result (or `upper` when None)
    is optimal.
    """
    from scipy.optimize import Bounds, LinearConstraint
    from scipy.optimize import milp as scipy_milp
    from scipy.sparse import coo_array

    target = upper - 1
    if target < lower_bound:
        return None, "greedy arena equals the bound", True
    nb, npairs = len(blocks), len(pairs)
    ia = nb + npairs  # index of A; k_0..k_{nb-1}, then z per pair, then A
    rows, cols, vals, ub = [], [], [], []

    def row(entries: list[tuple[int, float]], bound: float) -> None:
        r = len(ub)
        for c, v in entries:
            rows.append(r)
            cols.append(c)
            vals.append(v)
        ub.append(bound)

    for b, blk in enumerate(blocks):  # o_b + s_b <= A
        row([(b, blk.align), (ia, -1.0)], -blk.nbytes)
    big_m = float(upper)
    for p, (i, j, si, sj) in enumerate(pairs):
        ai, aj = blocks[i].align, blocks[j].align
        row([(i, ai), (j, -aj), (nb + p, -big_m)], -si)  # z = 0: i below j
        row([(j, aj), (i, -ai), (nb + p, big_m)], big_m - sj)  # z = 1: j below i
    matrix = coo_array((vals, (rows, cols)), shape=(len(ub), ia + 1)).tocsr()
    lower = np.zeros(ia + 1)
    upper_b = np.empty(ia + 1)
    for b, blk in enumerate(blocks):
        upper_b[b] = max((target - blk.nbytes) // blk.align, 0)
    upper_b[nb:ia] = 1
    lower[ia], upper_b[ia] = lower_bound, target
    cost = np.zeros(ia + 1)
    cost[ia] = 1.0
    integrality = np.ones(ia + 1)
    integrality[ia] = 0
    res = scipy_milp(cost, integrality=integrality, bounds=Bounds(lower, upper_b),
                     constraints=LinearConstraint(matrix, -np.inf, np.asarray(ub, float)),
                     options={"node_limit": node_limit, "time_limit": time_limit,
                              "presolve": True})
    if res.x is not None:
        offsets = [int(np.rint(res.x[b])) * blk.align for b, blk in enumerate(blocks)]
        if is_valid(blocks, offsets, pairs) and arena_of(blocks, offsets) < upper:
            proven = res.status == 0
            return offsets, ("MILP found the optimum" if proven else
                             "MILP improved on it (stopped at its limit, not proven "
                             "optimal)"), proven
    if res.status == 2:
        return None, "MILP proved the greedy arena optimal", True
    limit = "time limit" if "time" in str(res.message).lower() else "node limit"
    return None, f"MILP found nothing smaller before its {limit}", False


def place(blocks: list[Block], lower_bound: int, *, exact: bool = True,
          node_limit: int = MILP_NODE_LIMIT, time_limit: float = MILP_TIME_LIMIT_S
          ) -> Placement:
    """Greedy in several orders, local search, then the MILP when small enough; the
    smallest arena wins (ties: the simpler method)."""
    if not blocks:
        return Placement([], 0, "greedy", 0, "nothing to place", True)
    lower_bound = max(lower_bound, aligned_bound(blocks))
    placement = _place(blocks, lower_bound, exact, node_limit, time_limit)
    placement.bound_bytes = lower_bound
    return placement


def _place(blocks: list[Block], lower_bound: int, exact: bool, node_limit: int,
           time_limit: float) -> Placement:
    pairs = conflicts(blocks)
    sequences = {name: sorted(range(len(blocks)), key=lambda i: key(blocks[i]))
                 for name, key in GREEDY_ORDERS.items()}
    neighbours = _neighbours(blocks, pairs)
    greedy_arena, variant, offsets = min(
        ((arena_of(blocks, o), name, o) for name, seq in sequences.items()
         for o in [_greedy_in(blocks, neighbours, seq)]), key=lambda t: t[0])
    best = (greedy_arena, "greedy", offsets)
    if greedy_arena <= lower_bound:
        return Placement(offsets, greedy_arena, "greedy", greedy_arena,
                         "greedy reaches the bound", True, variant)
    rounds = max(2, min(LOCAL_ROUNDS, LOCAL_WORK // (len(blocks) + len(pairs))))
    for seq in sequences.values():
        arena, found = squeaky_wheel(blocks, pairs, seq, rounds)
        if arena < best[0]:
            best = (arena, "local search", found)
        if best[0] <= lower_bound:
            return Placement(best[2], best[0], best[1], greedy_arena,
                             "local search reaches the bound", True, variant)
    arena, method, offsets = best
    if not exact:
        return Placement(offsets, arena, method, greedy_arena, "MILP off", False, variant)
    if arena - lower_bound < MILP_MIN_GAP_FRACTION * lower_bound:
        return Placement(offsets, arena, method, greedy_arena,
                         f"MILP skipped: {method} is within {arena - lower_bound} B of the "
                         f"aligned bound", False, variant)
    if len(blocks) > MILP_MAX_BLOCKS or len(pairs) > MILP_MAX_PAIRS:
        return Placement(offsets, arena, method, greedy_arena,
                         f"MILP skipped: {len(blocks)} blocks, {len(pairs)} overlapping "
                         f"pairs (limits {MILP_MAX_BLOCKS}, {MILP_MAX_PAIRS})", False, variant)
    try:
        import scipy.optimize  # noqa: F401
    except ImportError:
        return Placement(offsets, arena, method, greedy_arena,
                         "MILP skipped: SciPy not installed", False, variant)
    found, note, proven = milp(blocks, pairs, lower_bound, arena, node_limit, time_limit)
    if found is not None:
        return Placement(found, arena_of(blocks, found), "milp", greedy_arena, note, proven,
                         variant)
    return Placement(offsets, arena, method, greedy_arena, note.replace(
        "the greedy arena", f"the {method} arena"), proven, variant)
