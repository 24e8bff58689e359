"""nas/report.html: one self-contained page (inline SVG and CSS, no scripts, no fetches).

Accuracy (int8, holdout, after short training) against SRAM, flash and MACs for every trained
candidate, with the Pareto front (best accuracy at or below each cost), the budget lines, the
winner marked; untrained candidates as ticks under the axis (grey: fit, red: over a budget).
"""
from __future__ import annotations

import html
import math
from pathlib import Path

from .measure import write_atomic

W, H = 460, 300
PAD_L, PAD_R, PAD_T, PAD_B = 56, 16, 18, 52


def write_report(path: Path, summary: dict, records: list[dict]) -> None:
    write_atomic(Path(path), render(summary, records))


def render(summary: dict, records: list[dict]) -> str:
    best = summary.get("best") or {}
    budgets = summary.get("budgets", {})
    trained = [r for r in records if (r.get("trained") or {}).get("holdout_acc_int8") is not None]
    plots = [
        _scatter(records, trained, "sram", "SRAM (arena + stack + I/O buffers), KB",
                 budgets.get("sram"), best.get("key"), log_x=False, scale=1024),
        _scatter(records, trained, "flash", "flash (weights + code estimate), KB",
                 budgets.get("flash"), best.get("key"), log_x=False, scale=1024),
        _scatter(records, trained, "macs", "MACs per inference (log)", None, best.get("key"),
                 log_x=True, scale=1),
    ]
    e = html.escape
    rows = [("target", summary.get("target")),
            ("budgets", f"SRAM {_kb(budgets.get('sram'))}, flash {_kb(budgets.get('flash'))}"),
            ("candidates measured", summary.get("candidates")),
            ("fit the budgets", summary.get("fit")),
            ("over budget (never trained)", summary.get("over_budget")),
            ("trained", summary.get("trained")),
            ("search / wall time", f"{summary.get('search_seconds', '-')} s / "
                                   f"{summary.get('wall_seconds', '-')} s of "
                                   f"{summary.get('time_limit_seconds', '-')} s"),
            ("proxy rank correlation (NASWOT vs accuracy)",
             _num(summary.get("proxy_rank_correlation"))),
            ("predictor rank correlation (5-fold)",
             _num(summary.get("predictor_rank_correlation"))),
            ("seed", summary.get("seed"))]
    if summary.get("interrupted"):
        rows.insert(0, ("status", "interrupted: continue with --resume"))
    winner = ""
    if best:
        ver = summary.get("verify") or {}
        vtext = ("not run" if not ver else ver.get("skipped") or ver.get("error")
                 or (f"linked: SRAM {_kb(ver['sram'])}, flash {_kb(ver['flash'])} "
                     f"({'within' if ver['fits'] else 'OVER'} the budgets); emulator check "
                     f"{ver['check_mismatches']} mismatches on {ver['check_samples']} samples; "
                     f"arena {'equal to' if ver['arena_matches'] else 'DIFFERENT from'} "
                     f"the measured one"))
        wrows = [("architecture", best["short"]),
                 ("input", "x".join(str(d) for d in best["input_shape"]) + " (NCHW float; "
                  "resize your data to this resolution)"),
                 ("int8 validation accuracy", f"{best['val_acc_int8']:.4f} (float "
                                              f"{best['val_acc_float']:.4f})"),
                 ("int8 holdout accuracy", f"{best['holdout_acc_int8']:.4f}"),
                 ("epochs", best["epochs"]),
                 ("arena", f"{best['arena']:,} B"),
                 ("SRAM (estimate)", f"{best['sram']:,} B"),
                 ("flash (estimate)", f"{best['flash']:,} B (weights {best['weights']:,} B + "
                                      f"code ~{best['code_estimate']:,} B)"),
                 ("MACs", f"{best['macs']:,}"), ("parameters", f"{best['params']:,}"),
                 ("edgec compile", vtext)]
        winner = "<h2>Winner: best.pt</h2>" + _table(wrows)
    top = sorted(trained, key=lambda r: -r["trained"]["holdout_acc_int8"])[:15]
    top_rows = "".join(
        f"<tr><td>{r['id']}</td><td><code>{e(r['short'])}</code></td>"
        f"<td>{r['trained']['holdout_acc_int8']:.4f}</td>"
        f"<td>{r['measure']['arena']:,}</td><td>{r['measure']['sram']:,}</td>"
        f"<td>{r['measure']['flash']:,}</td><td>{r['measure']['macs']:,}</td>"
        f"<td>{_num(r.get('proxy'))}</td></tr>" for r in top)
    warn = "".join(f"<li>{e(w)}</li>" for w in summary.get("warnings") or [])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>edgec nas report</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1500px; }}
table {{ border-collapse: collapse; margin: 8px 0 16px; }}
td, th {{ border-bottom: 1px solid #ddd; padding: 3px 10px; text-align: left; }}
th {{ background: #f4f4f4; }}
.plots {{ display: flex; flex-wrap: wrap; gap: 12px; }}
svg {{ background: #fff; border: 1px solid #ddd; }}
svg text {{ font: 11px system-ui, sans-serif; fill: #333; }}
.note {{ color: #666; }}
</style></head><body>
<h1>edgec nas</h1>
{_table(rows)}
{winner}
<h2>Accuracy against cost</h2>
<p class="note">Dots: trained candidates (int8 accuracy on the holdout after short training,
edgec's golden executor). Line: Pareto front. Dashed red: budget. Star: the winner. Ticks
under the axis: measured, not trained (grey: fits, red: over a budget).</p>
<div class="plots">{''.join(plots)}</div>
<h2>Best trained candidates</h2>
<table><tr><th>id</th><th>architecture</th><th>holdout acc (int8)</th><th>arena B</th>
<th>SRAM B</th><th>flash B</th><th>MACs</th><th>proxy</th></tr>{top_rows}</table>
{'<h2>Warnings</h2><ul>' + warn + '</ul>' if warn else ''}
<p class="note">Every candidate is in candidates.jsonl; the run's figures in summary.json.</p>
</body></html>
"""


def _table(rows) -> str:
    return "<table>" + "".join(f"<tr><th>{html.escape(str(k))}</th>"
                               f"<td>{html.escape(str(v))}</td></tr>" for k, v in rows) + \
        "</table>"


def _kb(v) -> str:
    return "-" if v is None else f"{v / 1024:.1f} KB"


def _num(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def _scatter(records: list[dict], trained: list[dict], key: str, label: str,
             budget: int | None, best_key: str | None, log_x: bool, scale: float) -> str:
    measured = [r for r in records if r.get("measure")]
    xs_all = [r["measure"][key] / scale for r in measured]
    if not xs_all:
        return ""
    tx = lambda v: math.log10(max(v, 1e-9)) if log_x else v  # noqa: E731
    lo_x = min(tx(v) for v in xs_all)
    hi_x = max([tx(v) for v in xs_all] + ([tx(budget / scale)] if budget else []))
    if hi_x <= lo_x:
        hi_x = lo_x + 1
    span = hi_x - lo_x
    lo_x, hi_x = lo_x - 0.04 * span, hi_x + 0.04 * span
    accs = [r["trained"]["holdout_acc_int8"] for r in trained]
    lo_y = min(accs + [1.0]) if accs else 0.0
    lo_y = max(0.0, math.floor(lo_y * 20) / 20 - 0.05)
    hi_y = 1.0
    px = lambda v: PAD_L + (tx(v) - lo_x) / (hi_x - lo_x) * (W - PAD_L - PAD_R)  # noqa: E731
    py = lambda a: PAD_T + (hi_y - a) / (hi_y - lo_y) * (H - PAD_T - PAD_B)  # noqa: E731
    parts = [f'<svg width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
             f'xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{html.escape(label)}">']
    x0, x1, y0, y1 = PAD_L, W - PAD_R, PAD_T, H - PAD_B
    parts.append(f'<line x1="{x0}" y1="{y1}" x2="{x1}" y2="{y1}" stroke="#444"/>'
                 f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="#444"/>')
    for i in range(6):  # y ticks
        a = lo_y + (hi_y - lo_y) * i / 5
        parts.append(f'<line x1="{x0 - 4}" y1="{py(a):.1f}" x2="{x1}" y2="{py(a):.1f}" '
                     f'stroke="#eee"/><text x="{x0 - 6}" y="{py(a) + 4:.1f}" '
                     f'text-anchor="end">{a:.2f}</text>')
    for i in range(5):  # x ticks
        t = lo_x + (hi_x - lo_x) * (i + 0.5) / 5
        v = 10 ** t if log_x else t
        text = f"{v:.2g}" if log_x else f"{v:.0f}" if v >= 10 else f"{v:.1f}"
        parts.append(f'<text x="{PAD_L + (t - lo_x) / (hi_x - lo_x) * (x1 - x0):.1f}" '
                     f'y="{y1 + 16}" text-anchor="middle">{text}</text>')
    parts.append(f'<text x="{(x0 + x1) / 2}" y="{H - 12}" text-anchor="middle">'
                 f'{html.escape(label)}</text>')
    parts.append(f'<text x="14" y="{(y0 + y1) / 2}" text-anchor="middle" '
                 f'transform="rotate(-90 14 {(y0 + y1) / 2})">accuracy (int8)</text>')
    trained_keys = {r["key"] for r in trained}
    for r in measured:  # rug: measured, not trained
        if r["key"] in trained_keys:
            continue
        x = px(r["measure"][key] / scale)
        color = "#d33" if r.get("over") else "#aaa"
        parts.append(f'<line x1="{x:.1f}" y1="{y1 + 2}" x2="{x:.1f}" y2="{y1 + 7}" '
                     f'stroke="{color}"/>')
    if budget:
        bx = px(budget / scale)
        parts.append(f'<line x1="{bx:.1f}" y1="{y0}" x2="{bx:.1f}" y2="{y1}" stroke="#d33" '
                     f'stroke-dasharray="5,4"/><text x="{bx - 4:.1f}" y="{y0 + 10}" '
                     f'text-anchor="end" fill="#d33">budget</text>')
    front = _pareto([(r["measure"][key] / scale, r["trained"]["holdout_acc_int8"])
                     for r in trained])
    if front:
        pts = []
        for i, (x, a) in enumerate(front):
            if i:
                pts.append(f"{px(x):.1f},{py(front[i - 1][1]):.1f}")
            pts.append(f"{px(x):.1f},{py(a):.1f}")
        parts.append(f'<polyline points="{" ".join(pts)}" fill="none" stroke="#1769aa" '
                     f'stroke-width="1.5"/>')
    for r in trained:
        x, a = px(r["measure"][key] / scale), py(r["trained"]["holdout_acc_int8"])
        title = html.escape(f"{r['short']}: {r['trained']['holdout_acc_int8']:.4f}")
        if r["key"] == best_key:
            parts.append(f'<text x="{x:.1f}" y="{a + 5:.1f}" text-anchor="middle" '
                         f'font-size="16" fill="#e69500"><title>winner: {title}</title>'
                         f'&#9733;</text>')
        else:
            parts.append(f'<circle cx="{x:.1f}" cy="{a:.1f}" r="3" fill="#1769aa" '
                         f'fill-opacity="0.6"><title>{title}</title></circle>')
    parts.append("</svg>")
    return "".join(parts)


def _pareto(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points not beaten by a cheaper (or equal) one of higher accuracy, by cost."""
    front, best = [], -1.0
    for x, a in sorted(points, key=lambda p: (p[0], -p[1])):
        if a > best:
            front.append((x, a))
            best = a
    return front
