"""Precision per tensor by measured sensitivity: int8 everywhere, int16 where int8 loses the
model.

Candidates are the tensors edgec has an int16 kernel path for: the probabilities of attention
(a softmax whose output only a batch_matmul reads, as its left operand). At int8 their scale
is TFLite's fixed 1/256, coarser than a uniform weight over more than 256 keys, so most
weights of a long sequence round to 0; int16 (TFLite's Softmax<int8, int16>, scale 1/65536)
keeps them. They cost little memory: the fused attention holds one row of them at a time.

Fidelity is measured, not guessed: the quantized graph runs as a float simulation
(float_exec.run_float(fake_quant=True), every tensor rounded through its params) on the
calibration samples next to the float graph, and the score is the worst sample's cosine
between the two models' outputs. Each candidate is measured alone; those that help are
promoted, the most helpful first: while the score is below the goal, and beyond it every
one that measurably helps (MIN_GAIN), since one int16 row of probabilities costs so little.
Calibration samples are usually training data, on which a trained model is confident and
its outputs least sensitive; the 160x160 ViT scores 0.998 at int8 on them but 0.88 on
held-out images, where int16 probabilities give 0.999.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import EdgecError
from ..float_exec import run_float, to_ir_layout
from ..ir import Graph, QuantParams, Tensor

MODES = ("auto", "int8")
DEFAULT_GOAL = 0.99
MIN_GAIN = 1e-4  # a worst-case cosine gain above the simulation's noise
MAX_SAMPLES = 8  # calibration samples the search measures on (each candidate runs them all)
PROBS_S16 = (1.0 / 65536, -32768)  # TFLite's int16 softmax output (int8 input)


@dataclass
class Candidate:
    tensor: str
    node: str
    op: str
    int8_bytes: int
    fidelity_alone: float | None = None  # the score with only this tensor at int16
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
        if users and all(u.op == "batch_matmul" and i == 0 for u, i in users):
            found.append(Candidate(y, n.name, n.op, qgraph.tensors[y].nbytes))
    return found


def promote(qgraph: Graph, names) -> Graph:
    """A copy with the named candidates at int16."""
    g = qgraph.copy()
    for name in names:
        t = g.tensors[name]
        g.tensors[name] = Tensor(t.name, t.shape, "int16", None,
                                 QuantParams.per_tensor(*PROBS_S16))
    return g


def fidelity(float_graph: Graph, qgraph: Graph, inputs: list[np.ndarray],
             reference: list[list[np.ndarray]] | None = None) -> float:
    """The worst cosine over `inputs` (IR layout) between the float graph's outputs and the
    quantized graph's simulated outputs."""
    name = float_graph.inputs[0]
    worst = 1.0
    for k, x in enumerate(inputs):
        want = reference[k] if reference is not None else _outputs(float_graph, name, x, False)
        got = _outputs(qgraph, name, x, True)
        worst = min(worst, _cosine(np.concatenate([w.ravel() for w in want]),
                                   np.concatenate([g.ravel() for g in got])))
    return worst


def _outputs(graph: Graph, name: str, x: np.ndarray, fake_quant: bool) -> list[np.ndarray]:
    values = run_float(graph, {name: x}, fake_quant=fake_quant)
    return [np.asarray(values[o], np.float64) for o in graph.outputs]


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
                          "min over calibration samples of the cosine between the float "
                          "model's outputs and the quantized model's (simulated)",
                          candidates=found)
    if mode == "int8" or not found:
        return qgraph, rep  # nothing to choose: no extra float runs
    reference = [_outputs(float_graph, float_graph.inputs[0], x, False) for x in inputs]
    rep.int8_fidelity = rep.fidelity = fidelity(float_graph, qgraph, inputs, reference)
    for c in found:
        c.fidelity_alone = fidelity(float_graph, promote(qgraph, [c.tensor]), inputs, reference)
    chosen: list[str] = []
    for c in sorted(found, key=lambda c: -c.fidelity_alone):
        if rep.fidelity >= goal and c.fidelity_alone - rep.int8_fidelity < MIN_GAIN:
            break
        chosen.append(c.tensor)
        c.promoted = True
        rep.fidelity = fidelity(float_graph, promote(qgraph, chosen), inputs, reference)
    return promote(qgraph, chosen), rep
