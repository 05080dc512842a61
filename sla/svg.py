"""Inline SVG charts for the HTML report: horizontal bars and a line, no script, no network.

Every label goes through `html.escape` after `safe` (a category or channel name may come from
a feed); numbers are formatted here, never taken as text from the data.
"""

from __future__ import annotations

import html

from tafang.store.text import safe

W = 720
BAR_H = 18
PAD = 6
LABEL_W = 230
_COLOUR = "#2b6cb0"


def esc(s: object) -> str:
    return html.escape(safe(str(s)), quote=True)


def _num(v: float, percent: bool) -> str:
    return f"{100 * v:.1f}%" if percent else f"{v:,.0f}"


def bars(title: str, labels: list[str], values: list[float | None], percent: bool) -> str:
    """One horizontal bar a label, longest scaled to the width; None is drawn as '-'."""
    top = max([v for v in values if v is not None] or [0.0]) or 1.0
    if percent:
        top = max(top, 1.0)
    span = W - LABEL_W - 70
    h = 24 + len(labels) * (BAR_H + PAD)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" '
        f'viewBox="0 0 {W} {h}" role="img" aria-label="{esc(title)}">',
        f'<text x="0" y="14" font-size="13" font-weight="bold">{esc(title)}</text>',
    ]
    for n, (label, v) in enumerate(zip(labels, values, strict=True)):
        y = 24 + n * (BAR_H + PAD)
        width = 0.0 if v is None else span * max(v, 0.0) / top
        parts.append(
            f'<text x="{LABEL_W - 6}" y="{y + 13}" font-size="12" text-anchor="end">'
            f"{esc(label)}</text>"
            f'<rect x="{LABEL_W}" y="{y}" width="{width:.1f}" height="{BAR_H}" fill="{_COLOUR}"/>'
            f'<text x="{LABEL_W + width + 4:.1f}" y="{y + 13}" font-size="12">'
            f"{'-' if v is None else _num(v, percent)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def line(title: str, labels: list[str], values: list[float | None], percent: bool) -> str:
    """A trend: values in order, gaps where None; first, middle and last labels on the axis."""
    h, left, bottom, top_pad = 200, 50, 30, 24
    known = [v for v in values if v is not None]
    hi = max(known or [0.0]) or 1.0
    if percent:
        hi = 1.0
    lo = 0.0
    plot_w, plot_h = W - left - 10, h - bottom - top_pad
    n = max(len(values) - 1, 1)

    def xy(k: int, v: float) -> tuple[float, float]:
        return left + plot_w * k / n, top_pad + plot_h * (1 - (v - lo) / (hi - lo))

    runs: list[list[str]] = [[]]
    for k, v in enumerate(values):
        if v is None:
            runs.append([])
            continue
        x, y = xy(k, v)
        runs[-1].append(f"{x:.1f},{y:.1f}")
    paths = "".join(
        f'<polyline fill="none" stroke="{_COLOUR}" stroke-width="1.5" points="{" ".join(r)}"/>'
        for r in runs
        if r
    )
    ticks = sorted({0, len(labels) // 2, len(labels) - 1}) if labels else []
    last = len(labels) - 1
    axis = "".join(
        f'<text x="{xy(k, lo)[0]:.1f}" y="{h - 8}" font-size="11" text-anchor='
        f'"{"start" if k == 0 else "end" if k == last else "middle"}">{esc(labels[k])}</text>'
        for k in ticks
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" '
        f'viewBox="0 0 {W} {h}" role="img" aria-label="{esc(title)}">'
        f'<text x="0" y="14" font-size="13" font-weight="bold">{esc(title)}</text>'
        f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{W - 10}" y2="{top_pad + plot_h}" '
        'stroke="#999"/>'
        f'<line x1="{left}" y1="{top_pad}" x2="{left}" y2="{top_pad + plot_h}" stroke="#999"/>'
        f'<text x="{left - 4}" y="{top_pad + 4}" font-size="11" text-anchor="end">'
        f"{_num(hi, percent)}</text>"
        f'<text x="{left - 4}" y="{top_pad + plot_h}" font-size="11" text-anchor="end">'
        f"{_num(lo, percent)}</text>"
        f"{paths}{axis}</svg>"
    )
