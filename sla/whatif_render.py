"""The what-if report (sla/whatif.py) as Markdown, HTML (self-contained, escaped) or JSON:
what happened and the replay side by side, each rate with its met/due."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from tafang.sla.whatif import CLOCK_REACHED, Figures
from tafang.sla.whatif_model import Model
from tafang.store.labels import labels

COUNTS = ("breached_cases", "escalated_cases", "escalation_steps", "top_level_cases", "unserved")


@dataclass(frozen=True)
class Report:
    """Everything the report shows."""

    first: date
    last: date
    seed: int
    roster: str  # "config" or the roster file's name
    actual: Figures
    replay: Figures
    recorded_escalated: int  # cases the record shows raised (imported levels and the sweep's)
    model: Model


def both(key: str, **params: object) -> str:
    """A heading as meetings read it: Chinese, then English."""
    zh, en = labels("zh").t(key, **params), labels("en").t(key, **params)
    return zh if zh == en else f"{zh} {en}"


def _rate(f: Figures, clock: str) -> str:
    r = f.rate(clock)
    return "–" if r is None else f"{r:.1%} ({f.met[clock]}/{f.due[clock]})"


def _delta_rate(r: Report, clock: str) -> str:
    a, b = r.actual.rate(clock), r.replay.rate(clock)
    return "–" if a is None or b is None else f"{(b - a) * 100:+.1f} pp"


def rows(r: Report) -> list[tuple[str, str, str, str]]:
    """(figure, actual, replay, change) for every line of the table."""
    out = [(both("whatif.cases"), str(r.actual.cases), str(r.replay.cases), "")]
    for clock, _due, _at in CLOCK_REACHED:
        out.append((both(f"assess.{clock}"), _rate(r.actual, clock), _rate(r.replay, clock),
                    _delta_rate(r, clock)))  # fmt: skip
    for clock, _due, _at in CLOCK_REACHED:
        a = r.actual.due[clock] - r.actual.met[clock]
        b = r.replay.due[clock] - r.replay.met[clock]
        out.append((both(f"whatif.breach_{clock}"), str(a), str(b), f"{b - a:+d}"))
    for key in COUNTS:
        a, b = getattr(r.actual, key), getattr(r.replay, key)
        out.append((both(f"whatif.{key}"), str(a), str(b), f"{b - a:+d}"))
    return out


def model_line(m: Model) -> str:
    travel = (
        f"travel {m.per_cell:+.0f} s per grid cell (t = {m.slope_t:.1f})"
        if m.per_cell is not None
        else "travel not scaled by distance (the record does not support it"
        + (f": t = {m.slope_t:.1f})" if m.slope_t is not None else ")")
    )
    pools = ", ".join(f"{g} {len(p)}" for g, p in sorted(m.pools.items()))
    return f"capacity {m.capacity} cases per officer; {travel}; samples per group: {pools}"


def as_markdown(r: Report) -> str:
    out = [
        f"# {both('whatif')} {r.first} – {r.last}",
        "",
        f"{both('whatif.note', seed=r.seed)}",
        "",
        f"roster: `{r.roster}` · {both('whatif.model')}: {model_line(r.model)}",
        "",
        f"| {both('whatif.figure')} | {both('whatif.actual')} | {both('whatif.replay')} "
        f"| {both('whatif.change')} |",
        "|---|---:|---:|---:|",
    ]
    out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows(r)]
    out += [
        "",
        f"escalated cases as recorded (imported levels and the sweep's): {r.recorded_escalated}",
    ]
    return "\n".join(out) + "\n"


def as_html(r: Report) -> str:
    e = html.escape
    body = "".join(
        f"<tr><th>{e(a)}</th><td>{e(b)}</td><td>{e(c)}</td><td>{e(d)}</td></tr>"
        for a, b, c, d in rows(r)
    )
    head = "".join(
        f"<th>{e(both(k))}</th>"
        for k in ("whatif.figure", "whatif.actual", "whatif.replay", "whatif.change")
    )
    title = e(f"{both('whatif')} {r.first} – {r.last}")
    return (
        "<!doctype html><html lang=zh><meta charset=utf-8>"
        f"<title>{title}</title><style>body{{font-family:sans-serif;margin:2em}}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em}"
        "td{text-align:right}</style>"
        f"<h1>{title}</h1><p>{e(both('whatif.note', seed=r.seed))}</p>"
        f"<p>roster: <code>{e(r.roster)}</code> · {e(both('whatif.model'))}: "
        f"{e(model_line(r.model))}</p><table><tr>{head}</tr>{body}</table>"
        f"<p>escalated cases as recorded: {r.recorded_escalated}</p></html>\n"
    )


def _figures(f: Figures) -> dict[str, Any]:
    return {
        "cases": f.cases,
        "rates": {
            c: {"met": f.met[c], "due": f.due[c], "rate": f.rate(c)} for c, *_ in CLOCK_REACHED
        },
        **{k: getattr(f, k) for k in COUNTS},
    }


def as_json(r: Report) -> str:
    m = r.model
    doc = {
        "from": str(r.first),
        "to": str(r.last),
        "seed": r.seed,
        "roster": r.roster,
        "actual": {**_figures(r.actual), "recorded_escalated": r.recorded_escalated},
        "replay": _figures(r.replay),
        "model": {
            "capacity": m.capacity,
            "travel_s_per_cell": m.per_cell,
            "slope_t": m.slope_t,
            "samples": {g: len(p) for g, p in sorted(m.pools.items())},
        },
    }
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


RENDER = {"md": as_markdown, "html": as_html, "json": as_json}


def build(
    store: Any, policy: Any, first: date, last: date, roster: Any, seed: int, roster_name: str
) -> Report:
    """Read the period, fit the model, replay it under `roster`, and tally both sides.

    Raises ValueError when the period has no case that reached the scene (nothing to fit)."""
    from tafang.sla.whatif import figures, period_bounds, replay, what_happened
    from tafang.sla.whatif_model import fit
    from tafang.store.arrivals import arrivals

    d = store.d
    start, end = period_bounds(first, last, policy.tz)
    rows = arrivals(store, start, end)
    model = fit(rows, d, end)
    actual = figures(what_happened(rows, end), policy, end)
    replayed = figures(replay(rows, roster, model, seed, end), policy, end)
    recorded = sum(1 for r in rows if r["escalation_level"])
    return Report(first, last, seed, roster_name, actual, replayed, recorded, model)
