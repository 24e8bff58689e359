"""report.html: the compile report as one self-contained page (inline CSS and SVG; no script,
no font, no image and no style sheet from the network), for people.

    write_html_report(report, out_dir)       # -> out_dir/report.html
    render_html(report) -> str

Everything comes from the report dict of toolchain/report.py (report.json), so
`edgec report` can re-render it later: `memory.timeline` (the plan's buffers, first/last are
steps in execution order), `memory.inplace`, `layers` (execution order, with MACs, weights
and, when profiled, instructions) and `flash`. This module computes the geometry in Python;
codegen/templates/report.html.j2 only lays it out.

Sections:
1. Key figures: arena, SRAM, flash, latency, MACs, check.
2. Memory timeline: x = step (layer in execution order), y = arena offset. Each buffer is a
   rectangle (tooltip: name, bytes, offsets, lifetime); the live bytes per step as a line;
   the lower bound, the arena (its peak marked) and the SRAM budget as horizontal lines
   (the budget is noted instead when it is far off the scale).
3. Per layer: MACs and instructions as bars on the same x axis as the timeline.
4. Flash: used against the budget, then weights per layer, model code, kernels, runtime.
"""
from __future__ import annotations

import itertools
import math
from pathlib import Path

import jinja2

TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "codegen" / "templates"
TEMPLATE = "report.html.j2"

WIDTH = 1240  # SVG width in px (the page is 1320 px wide)
LEFT, RIGHT = 86, 200  # plot margins: y labels on the left, line labels on the right
PLOT_W = WIDTH - LEFT - RIGHT
TIMELINE_H = 420  # plot height of the memory timeline
BARS_H = 120  # plot height of each per-layer bar chart
BUDGET_SCALE_LIMIT = 2.5  # draw the SRAM budget line when it is within this x the arena

# op family -> (fill, darker fill for alternate layers); colour-blind-friendly hues
PALETTE = {
    "input": ("#94a3b8", "#7b8ba1"),
    "conv": ("#4e79a7", "#3d6591"),
    "depthwise": ("#59a5a0", "#468c87"),
    "dense": ("#8c6bb1", "#77579c"),
    "elementwise": ("#f28e2b", "#db7a1a"),
    "pool": ("#76b041", "#62992f"),
    "shape": ("#b07aa1", "#98668a"),
    "other": ("#9c755f", "#86634f"),
}
FAMILY_LABELS = {"input": "model input", "conv": "convolution", "depthwise": "depthwise",
                 "dense": "fully connected", "elementwise": "elementwise", "pool": "pooling",
                 "shape": "reshape / concat", "other": "other"}


def op_family(op: str) -> str:
    op = op.lower()
    if "depthwise" in op or "dwconv" in op:
        return "depthwise"
    if "conv" in op:
        return "conv"
    if op in ("gemm", "matmul", "fully_connected", "fc", "dense", "linear"):
        return "dense"
    if any(k in op for k in ("add", "mul", "sub", "relu", "clip", "sigmoid", "tanh",
                             "quantize", "requant", "hardswish", "swish", "max", "min")) \
            and "pool" not in op:
        return "elementwise"
    if "pool" in op or op in ("mean", "reducemean", "globalaveragepool"):
        return "pool"
    if op in ("reshape", "flatten", "concat", "transpose", "squeeze", "unsqueeze", "pad",
              "slice", "split"):
        return "shape"
    return "other"


def human_bytes(n: float | None) -> str:
    if n is None:
        return "n/a"
    if abs(n) < 1024:
        return f"{int(n):,} B"
    if abs(n) < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / (1024 * 1024):.2f} MB"


def human_count(n: float | None) -> str:
    if n is None:
        return "n/a"
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.3g}{unit}"
    return f"{int(n)}"


def tick_label(v: float, in_bytes: bool = True) -> str:
    if not v:
        return "0"
    if not in_bytes:
        return human_count(v)
    if v >= 1024 * 1024:
        return f"{v / (1024 * 1024):g} MB"
    if v >= 1024:
        return f"{v / 1024:g} KB"
    return f"{int(v)} B"


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least `top` (1, 2, 2.5 or 5 x 10^k apart)."""
    if top <= 0:
        return [0.0]
    raw = top / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    ticks, v = [0.0], 0.0
    while v < top:
        v += step
        ticks.append(v)
    return ticks


def byte_ticks(top: float, count: int = 6) -> list[float]:
    """Ticks on KB boundaries (1024-based) when the scale is in KB."""
    if top < 2048:
        return nice_ticks(top, count)
    return [t * 1024 for t in nice_ticks(top / 1024, count)]


def _spread(labels: list[dict], gap: float = 15.0) -> None:
    """Push overlapping right-margin labels apart vertically (in place, by 'y')."""
    labels.sort(key=lambda lb: lb["y"])
    for a, b in itertools.pairwise(labels):
        if b["y"] - a["y"] < gap:
            b["y"] = a["y"] + gap


# ---- sections -------------------------------------------------------------------------------

def _tiles(report: dict) -> list[dict]:
    mem, flash, lat = report["memory"], report["flash"], report["latency"]
    tiles = []
    arena, bound = mem.get("arena_bytes"), mem.get("lower_bound_bytes")
    if arena is not None:
        sub = f"bound {human_bytes(bound)} with scratch"
        if mem.get("lower_bound") not in (None, bound):
            sub = f"bound {human_bytes(mem['lower_bound'])}, " + sub
        if mem.get("lower_bound_original_bytes") not in (None, bound):
            sub += f" (model order {human_bytes(mem['lower_bound_original_bytes'])})"
        tone = "good" if arena <= (bound or 0) else "warn" if mem.get("gap_bytes") else "plain"
        tiles.append({"label": "Arena", "value": human_bytes(arena), "sub": sub, "tone": tone})
    tiles.append(_budget_tile("SRAM", mem.get("sram_total_bytes"), mem.get("sram_budget_bytes"),
                              "static + stack reserved", report))
    tiles.append(_budget_tile("Flash", flash.get("total_bytes"), flash.get("budget_bytes"),
                              "weights + code", report))
    if lat.get("est_ms") is not None:
        tiles.append({"label": "Latency (estimate)", "value": f"{lat['est_ms']:.3f} ms",
                      "sub": f"{lat['instructions']:,} instructions at 1/cycle",
                      "tone": "plain"})
    else:
        tiles.append({"label": "Latency", "value": "not run",
                      "sub": report.get("skipped", {}).get("run", ""), "tone": "muted"})
    macs = report["model"].get("macs")
    if macs is not None:
        tiles.append({"label": "MACs", "value": human_count(macs),
                      "sub": f"{report['model'].get('layers', 0)} layers", "tone": "plain"})
    chk = report.get("check")
    if chk is not None:
        ok = chk.get("mismatches") == 0
        tiles.append({"label": "Check", "value": "PASS" if ok else "FAIL",
                      "sub": f"{chk.get('samples')} samples vs {chk.get('reference')}",
                      "tone": "good" if ok else "bad"})
    return tiles


def _budget_tile(label: str, used: int | None, budget: int | None, what: str,
                 report: dict) -> dict:
    if used is None:
        return {"label": label, "value": "not built",
                "sub": f"budget {human_bytes(budget)}", "tone": "muted"}
    pct = 100.0 * used / budget if budget else 0.0
    return {"label": label, "value": human_bytes(used),
            "sub": f"{pct:.1f}% of {human_bytes(budget)} ({what})", "pct": min(pct, 100.0),
            "tone": "bad" if pct > 100 else "warn" if pct > 90 else "plain"}


def _steps(report: dict, timeline: list[dict]) -> int:
    n = len(report.get("layers") or [])
    return max(n, max((e["last"] + 1 for e in timeline), default=0), 1)


def _x(step: float, n: int) -> float:
    return LEFT + step * PLOT_W / n


def _layer_names(report: dict, n: int) -> list[str]:
    layers = report.get("layers") or []
    return [layers[s]["name"] if s < len(layers) else f"step {s}" for s in range(n)]


def _live_per_step(timeline: list[dict], inplace: list[dict], n: int) -> list[int]:
    live = [0] * n
    for e in timeline:
        for s in range(e["first"], min(e["last"], n - 1) + 1):
            live[s] += e["bytes"]
    for a in inplace:  # an in-place output shares its input's bytes at the hand-over step
        if 0 <= a["step"] < n:
            live[a["step"]] -= a["bytes"]
    return live


def _timeline(report: dict, timeline: list[dict]) -> dict | None:
    mem = report["memory"]
    if not timeline:
        return None
    n = _steps(report, timeline)
    names = _layer_names(report, n)
    layers = report.get("layers") or []
    live = _live_per_step(timeline, mem.get("inplace") or [], n)
    arena = mem.get("arena_bytes") or max(e["offset"] + e["bytes"] for e in timeline)
    bound = mem.get("lower_bound_bytes")
    bound_inplace = mem.get("lower_bound_inplace_bytes")
    budget = mem.get("sram_budget_bytes")
    scale_top = max(arena, bound or 0, max(live))
    budget_on_scale = bool(budget) and budget <= BUDGET_SCALE_LIMIT * scale_top
    if budget_on_scale:
        scale_top = max(scale_top, budget)
    ticks = byte_ticks(scale_top * 1.04)
    ymax = ticks[-1]
    top = 24

    def y(v: float) -> float:
        return top + TIMELINE_H - v * TIMELINE_H / ymax

    inputs = {i["name"] for i in report["model"].get("inputs", [])}
    aliases = {a["output"]: a for a in mem.get("inplace") or []}
    rects = []
    for e in sorted(timeline, key=lambda e: (e["first"], e["offset"])):
        if e["bytes"] <= 0:
            continue
        step = e["first"]
        if e["kind"] == "scratch":
            family, fill = "scratch", "url(#hatch)"
        elif e["name"] in inputs:
            family, fill = "input", PALETTE["input"][0]
        else:
            op = layers[step]["op"] if step < len(layers) else "other"
            family = op_family(op)
            fill = PALETTE[family][step % 2]
        x0, x1 = _x(e["first"], n), _x(e["last"] + 1, n)
        y1, y0 = y(e["offset"]), y(e["offset"] + e["bytes"])
        lifetime = (f"steps {e['first']}-{e['last']}: {names[e['first']]} -> "
                    f"{names[min(e['last'], n - 1)]}" if e["last"] > e["first"] else
                    f"step {e['first']}: {names[e['first']]}")
        tip = [f"{e['name']} ({'scratch' if e['kind'] == 'scratch' else 'tensor'})",
               f"{e['bytes']:,} B at arena offset {e['offset']:,}-{e['offset'] + e['bytes']:,}",
               lifetime]
        if e.get("alias_of"):
            shared = aliases.get(e["name"], {}).get("bytes", e["bytes"])
            tip.append(f"in place over {e['alias_of']} ({shared:,} B shared)")
        rects.append({"x": x0 + 0.5, "y": y0, "w": max(x1 - x0 - 1.0, 1.0),
                      "h": max(y1 - y0, 0.8), "fill": fill, "family": family,
                      "alias": bool(e.get("alias_of")), "tip": "\n".join(tip)})

    # live bytes: a step line across each step's width
    points = []
    for s, v in enumerate(live):
        points += [(_x(s, n), y(v)), (_x(s + 1, n), y(v))]
    live_path = "M" + " L".join(f"{px:.1f},{py:.1f}" for px, py in points)
    peak_step = max(range(n), key=lambda s: (live[s], -s))
    top_entry = max((e for e in timeline if e["bytes"] > 0),
                    key=lambda e: (e["offset"] + e["bytes"], -e["first"]))
    arena_step = min(range(top_entry["first"], min(top_entry["last"], n - 1) + 1),
                     key=lambda s: (-live[s], s))

    lines, labels = [], []

    def hline(value: int, cls: str, text: str) -> None:
        lines.append({"y": y(value), "cls": cls, "x0": LEFT, "x1": LEFT + PLOT_W})
        labels.append({"y": y(value) + 4, "cls": cls, "text": text})

    hline(arena, "arena", f"arena {arena:,} B")
    if bound is not None and bound != arena:
        hline(bound, "bound", f"lower bound {bound:,} B")
    if bound_inplace is not None and bound_inplace not in (bound, arena):
        hline(bound_inplace, "bound-inplace", f"bound, in place {bound_inplace:,} B")
    if bound is not None and bound == arena:
        labels[0]["text"] = f"arena = bound, {arena:,} B"
    if budget_on_scale:
        hline(budget, "budget", f"SRAM budget {human_bytes(budget)}")
    _spread(labels)
    off_scale = None
    if budget and not budget_on_scale:
        off_scale = (f"SRAM budget {human_bytes(budget)}: off this scale "
                     f"(the arena uses {100.0 * arena / budget:.1f}% of it)")

    every = max(1, math.ceil(n / 24))
    x_ticks = [{"x": _x(s + 0.5, n), "text": str(s)} for s in range(0, n, every)]
    show_names = n <= 40
    x_names = [{"x": _x(s + 0.5, n), "text": names[s][:22]} for s in range(n)] \
        if show_names else []
    columns = [{"x": _x(s, n), "w": PLOT_W / n,
                "tip": f"step {s}: {names[s]}"
                       + (f" ({layers[s]['op']}, {layers[s]['kernel']})"
                          if s < len(layers) else "")
                       + f"\n{live[s]:,} B live"} for s in range(n)]
    families = sorted({r["family"] for r in rects},
                      key=lambda f: list(PALETTE).index(f) if f in PALETTE else 99)
    legend = [{"label": FAMILY_LABELS[f], "fill": PALETTE[f][0]} for f in families
              if f in PALETTE]
    if "scratch" in families:
        legend.append({"label": "scratch", "fill": "url(#hatch)"})
    longest = max((len(t["text"]) for t in x_names), default=0)
    bottom = 34 + (int(longest * 6.2 * 0.64) + 12 if show_names else 0)
    return {
        "width": WIDTH, "height": top + TIMELINE_H + bottom, "left": LEFT, "top": top,
        "plot_w": PLOT_W, "plot_h": TIMELINE_H, "plot_bottom": top + TIMELINE_H,
        "rects": rects, "live_path": live_path, "lines": lines, "labels": labels,
        "label_x": LEFT + PLOT_W + 10,
        "y_ticks": [{"y": y(t), "text": tick_label(t)} for t in ticks],
        "x_ticks": x_ticks, "x_names": x_names, "columns": columns, "legend": legend,
        "peak": {"x": _x(arena_step + 0.5, n), "y": y(arena),
                 "text": f"peak at step {arena_step} ({names[arena_step]})"},
        "live_peak": {"x": _x(peak_step + 0.5, n), "y": y(live[peak_step]),
                      "text": f"{live[peak_step]:,} B live"},
        "off_scale": off_scale, "steps": n, "has_alias": any(r["alias"] for r in rects),
    }


def _bars(report: dict, key: str, label: str, color: str, n: int) -> dict | None:
    layers = report.get("layers") or []
    values = [ly.get(key) for ly in layers]
    if not layers or any(v is None for v in values) or not any(values):
        return None
    total = sum(values)
    ticks = nice_ticks(max(values) * 1.05, 3)
    vmax = ticks[-1]
    top = 10

    def y(v: float) -> float:
        return top + BARS_H - v * BARS_H / vmax

    width = PLOT_W / n
    bars = []
    for s, ly in enumerate(layers):
        v = ly[key]
        share = 100.0 * v / total if total else 0.0
        tip = (f"step {s}: {ly['name']} ({ly['op']}, {ly['kernel']})\n"
               f"{v:,} {label.lower()} ({share:.1f}%)")
        if key == "instructions" and ly.get("macs"):
            tip += f"\n{ly['macs'] / v:.2f} MACs per instruction" if v else ""
        bars.append({"x": _x(s, n) + width * 0.12, "w": max(width * 0.76, 1.0), "y": y(v),
                     "h": max(top + BARS_H - y(v), 0.0 if v == 0 else 0.8), "tip": tip})
    return {"label": label, "color": color, "bars": bars, "width": WIDTH,
            "height": top + BARS_H + 8, "left": LEFT, "plot_w": PLOT_W, "top": top,
            "plot_bottom": top + BARS_H, "total": f"{total:,}",
            "y_ticks": [{"y": y(t), "text": human_count(t) if t else "0"} for t in ticks]}


def _flash(report: dict) -> dict:
    flash = report["flash"]
    layers = report.get("layers") or []
    weights_total = flash.get("weights_bytes")
    if weights_total is None:
        weights_total = flash.get("model_constants_bytes") or 0
    code = flash.get("code_bytes")
    parts = flash.get("code_breakdown") or ({"code": code} if code else {})
    used = weights_total + sum(parts.values())
    budget = flash.get("budget_bytes") or used or 1
    scale = max(budget, used, 1)

    segments = []  # the breakdown bar, scaled to what is used
    span = max(used, 1)
    x = 0.0
    with_weights = [ly for ly in layers if ly.get("weights_bytes")]
    with_weights.sort(key=lambda ly: -ly["weights_bytes"])
    named = with_weights[:12]
    for ly in sorted(named, key=lambda ly: ly["index"]):
        w = ly["weights_bytes"] * PLOT_W / span
        fam = op_family(ly["op"])
        segments.append({"x": x, "w": w, "fill": PALETTE[fam][ly["index"] % 2],
                         "text": ly["name"] if w > 70 else "",
                         "tip": f"{ly['name']} ({ly['op']}): {ly['weights_bytes']:,} B "
                                f"of weights"})
        x += w
    rest = sum(ly["weights_bytes"] for ly in with_weights[12:])
    if rest:
        w = rest * PLOT_W / span
        segments.append({"x": x, "w": w, "fill": "#a3b4c8", "text": "" if w < 70 else
                         f"{len(with_weights) - 12} more", "tip": f"{len(with_weights) - 12} "
                         f"smaller layers: {rest:,} B of weights"})
        x += w
    code_colors = {"model": "#5c6b7a", "kernels": "#3b4754", "runtime": "#9aa5b1",
                   "code": "#5c6b7a"}
    code_labels = {"model": "model code", "kernels": "kernels", "runtime": "runtime",
                   "code": "code"}
    for key, size in parts.items():
        w = size * PLOT_W / span
        segments.append({"x": x, "w": w, "fill": code_colors[key],
                         "text": code_labels[key] if w > 70 else "",
                         "tip": f"{code_labels[key]}: {size:,} B"})
        x += w
    gauge = [{"w": weights_total * PLOT_W / scale, "fill": "#4e79a7",
              "tip": f"weights: {weights_total:,} B"}]
    if parts:
        gauge.append({"w": sum(parts.values()) * PLOT_W / scale, "fill": "#5c6b7a",
                      "tip": f"code: {sum(parts.values()):,} B"})
    gx = 0.0
    for g in gauge:
        g["x"] = gx
        gx += g["w"]
    legend = [{"label": "weights", "fill": "#4e79a7", "value": human_bytes(weights_total)}]
    legend += [{"label": code_labels[k], "fill": code_colors[k], "value": human_bytes(v)}
               for k, v in parts.items()]
    top_layers = [{"name": ly["name"], "op": ly["op"], "bytes": f"{ly['weights_bytes']:,}",
                   "share": f"{100.0 * ly['weights_bytes'] / max(weights_total, 1):.1f}%"}
                  for ly in with_weights[:8]]
    return {
        "width": WIDTH, "left": LEFT, "plot_w": PLOT_W, "segments": segments,
        "gauge": gauge, "budget_x": budget * PLOT_W / scale, "budget": human_bytes(budget),
        "used": human_bytes(used), "pct": f"{100.0 * used / budget:.1f}%" if budget else "-",
        "legend": legend, "top_layers": top_layers, "built": code is not None,
        "note": None if code is not None else
        (report.get("skipped", {}).get("build", "not built")
         + ": the weights are the model's constant tables; code size is not known"),
    }


def _facts(report: dict) -> list[tuple[str, str]]:
    mem = report["memory"]
    order = {"original": "the model's own order", "exact": "searched, proven minimal peak",
             "heuristic": "searched (heuristic), not proven minimal"}
    rows = [("arena", f"{mem.get('arena_bytes') or 0:,} B"),
            ("lower bound, activations (this order)", f"{mem.get('lower_bound') or 0:,} B"),
            ("lower bound with scratch (this order)",
             f"{mem.get('lower_bound_bytes') or 0:,} B")]
    if mem.get("lower_bound_original_bytes") is not None:
        rows.append(("lower bound (model's order)", f"{mem['lower_bound_original_bytes']:,} B"))
    if mem.get("inplace"):
        rows.append(("lower bound with in-place sharing",
                     f"{mem['lower_bound_inplace_bytes']:,} B"))
    if mem.get("lower_bound_any_order_bytes") is not None:
        rows.append(("proven bound over every order",
                     f"{mem['lower_bound_any_order_bytes']:,} B"))
    if mem.get("naive_bytes") is not None:
        rows.append(("without reuse", f"{mem['naive_bytes']:,} B"))
    if mem.get("order_method"):
        rows.append(("layer order", order.get(mem["order_method"], mem["order_method"])
                     + ("; layers reordered" if mem.get("order_changed") else "")))
    if mem.get("placement_method"):
        rows.append(("placement", f"{mem['placement_method']}: {mem.get('placement_note')}"))
        if mem.get("greedy_arena_bytes") is not None:
            rows.append(("greedy placement (baseline)", f"{mem['greedy_arena_bytes']:,} B"))
    if mem.get("gap_bytes"):
        rows.append((f"gap ({mem['gap_bytes']:,} B)", mem.get("gap_reason") or ""))
    if mem.get("stack_bytes") is not None:
        used = f"{mem['stack_bytes']:,} of {mem['stack_reserved_bytes']:,} B reserved"
        rows.append(("stack high-water", used))
    return rows


def render_html(report: dict, timeline: list[dict] | None = None) -> str:
    """The page as a string; `timeline` overrides report["memory"]["timeline"]."""
    timeline = list(timeline if timeline is not None else
                    report["memory"].get("timeline") or [])
    tl = _timeline(report, timeline)
    n = tl["steps"] if tl else max(len(report.get("layers") or []), 1)
    bars = [b for b in (_bars(report, "macs", "MACs", "#4e79a7", n),
                        _bars(report, "instructions", "Instructions", "#59a14f", n)) if b]
    profiled = any("instructions" in ly for ly in report.get("layers") or [])
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
                             undefined=jinja2.StrictUndefined, autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    m, t = report["model"], report["target"]
    return env.get_template(TEMPLATE).render(
        title=f"{m.get('name', 'model')} on {t['name']}", model=m, target=t,
        tiles=_tiles(report), timeline=tl, bars=bars, profiled=profiled,
        flash=_flash(report), facts=_facts(report), inplace=report["memory"].get("inplace"),
        layers=report.get("layers") or [], warnings=report.get("warnings") or [],
        skipped=report.get("skipped") or {}, latency_note=report["latency"].get("note"),
        fmt=lambda v: f"{v:,}" if isinstance(v, int) else str(v))


def write_html_report(report: dict, out_dir: str | Path,
                      timeline: list[dict] | None = None) -> Path:
    """Write out_dir/report.html; return its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "report.html"
    path.write_text(render_html(report, timeline), encoding="utf-8")
    return path
