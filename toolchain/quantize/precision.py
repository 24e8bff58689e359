"""Precision per tensor by measured sensitivity: int8 everywhere, int16 where int8 loses the
model.

Candidates are the tensors edgec has an int16 kernel path for: the probabilities of attention
(a softmax whose output only a batch_matmul reads, as its left operand). At int8 their scale
is TFLite's fixed 1/256, coarser than a uniform weight over more than 256 keys, so most
weights of a long sequence round to 0; int16 (TFLite's Softmax<int8, int16>, scale 1/65536)
keeps them. They cost little memory: the fused attention holds one row of them at a time.

Fidelity is measured, not guessed: the quantized graph runs as a float simulation
(float_exec.run_float(fake_quant=True), every tensor rounded through its params) on the
calibration samples next to the float graph. The score is the worst cosine, over samples,
between the two models' values of the watched tensors: the graph outputs and the output each
candidate feeds (its layer's own effect). The outputs alone are not enough: calibration
samples are usually training data, on which a trained model is confident, and the 160x160
ViT's logits score 0.998 at int8 there but 0.88 on held-out images. Candidates are promoted,
the one whose own layer gains most first, while the score is below the goal, and beyond it
every one that measurably helps its layer (MIN_GAIN): one int16 row costs little.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import EdgecError
from ..float_exec import run_float, to_ir_layout
from ..ir import Graph, QuantParams, Tensor

MODES = ("auto", "int8")
DEFAULT_GOAL = 0.99
MIN_GAIN = 1e-3  # a gain in the layer's worst-case cosine worth a wider row
MAX_SAMPLES = 8  # calibration samples the search measures on (each candidate runs them all)
PROBS_S16 = (1.0 / 65536, -32768)  # TFLite's int16 softmax output (int8 input)


@dataclass
class Candidate:
    tensor: str
    node: str
    op: str
    int8_bytes: int
    watch: str  # the output of the layer it feeds
    watch_int8: float | None = None  # that output's worst cosine with every tensor at int8
    watch_int16: float | None = None  # ... with this tensor alone at int16
    promoted: bool = False


@dataclass
class PrecisionReport:
    mode: str
    goal: float
    samples: int
    metric: str
    int8_fidelity: float | None = None
    fidelity: float | None = None
    candidates: list[Candidate] = field(default_factory=list)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["int16_tensors"] = [c.tensor for c in self.candidates if c.promoted]
        return d


def candidates(qgraph: Graph) -> list[Candidate]:
    """Attention probabilities: softmax outputs read only as a batch_matmul's lhs."""
    readers: dict[str, list] = {}
    for n in qgraph.nodes:
        for i, t in enumerate(n.inputs):
            readers.setdefault(t, []).append((n, i))
    found = []
    for n in qgraph.nodes:
        y = n.outputs[0]
        if n.op != "softmax" or y in qgraph.outputs or qgraph.tensors[y].dtype != "int8":
            continue
        users = readers.get(y, [])
        if len(users) == 1 and users[0][0].op == "batch_matmul" and users[0][1] == 0:
            found.append(Candidate(y, n.name, n.op, qgraph.tensors[y].nbytes,
                                   users[0][0].outputs[0]))
    return found


def promote(qgraph: Graph, names) -> Graph:
    """A copy with the named candidates at int16."""
    g = qgraph.copy()
    for name in names:
        t = g.tensors[name]
        g.tensors[name] = Tensor(t.name, t.shape, "int16", None,
                                 QuantParams.per_tensor(*PROBS_S16))
    return g


def worst_cosines(qgraph: Graph, inputs: list[np.ndarray], reference: list[dict],
                  watch: list[str]) -> dict[str, float]:
    """Per watched tensor, the worst cosine over `inputs` (IR layout) between the float
    values in `reference` and the quantized graph's simulated ones."""
    name = qgraph.inputs[0]
    worst = {t: 1.0 for t in watch}
    for x, want in zip(inputs, reference):
        got = run_float(qgraph, {name: x}, fake_quant=True, keep_all=True)
        for t in watch:
            worst[t] = min(worst[t], _cosine(want[t].ravel(), got[t].ravel()))
    return worst


def _values(graph: Graph, x: np.ndarray, watch: list[str]) -> dict[str, np.ndarray]:
    values = run_float(graph, {graph.inputs[0]: x}, keep_all=True)
    return {t: np.asarray(values[t], np.float64) for t in watch}


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        return 1.0 if na == nb else 0.0
    return float(a @ b / (na * nb))


def choose_precision(float_graph: Graph, qgraph: Graph, samples: np.ndarray,
                     mode: str = "auto", goal: float = DEFAULT_GOAL
                     ) -> tuple[Graph, PrecisionReport]:
    """qgraph with the candidates the goal needs at int16, and what was measured."""
    if mode not in MODES:
        raise EdgecError(f"--precision {mode!r}: choose one of {', '.join(MODES)}")
    if not 0.0 < goal <= 1.0:
        raise EdgecError(f"--fidelity {goal}: give a cosine in (0, 1], e.g. {DEFAULT_GOAL}")
    found = candidates(qgraph)
    layout = float_graph.io_layout.get(float_graph.inputs[0], "")
    inputs = [to_ir_layout(s[None], layout) for s in samples[:MAX_SAMPLES]]
    rep = PrecisionReport(mode, goal, len(inputs),
                          "min over calibration samples and watched tensors (the outputs, "
                          "the layers the candidates feed) of the cosine between the float "
                          "model and the quantized one (simulated)",
                          candidates=found)
    if mode == "int8" or not found:
        return qgraph, rep  # nothing to choose: no extra float runs
    watch = list(dict.fromkeys([*qgraph.outputs, *(c.watch for c in found)]))
    reference = [_values(float_graph, x, watch) for x in inputs]
    base = worst_cosines(qgraph, inputs, reference, watch)
    rep.int8_fidelity = rep.fidelity = min(base.values())
    for c in found:
        c.watch_int8 = base[c.watch]
        c.watch_int16 = worst_cosines(promote(qgraph, [c.tensor]), inputs, reference,
                                      [c.watch])[c.watch]
    chosen: list[str] = []
    for c in sorted(found, key=lambda c: c.watch_int8 - c.watch_int16):
        if rep.fidelity >= goal and c.watch_int16 - c.watch_int8 < MIN_GAIN:
            break
        chosen.append(c.tensor)
        c.promoted = True
        rep.fidelity = min(worst_cosines(promote(qgraph, chosen), inputs, reference,
                                         watch).values())
    return promote(qgraph, chosen), rep
