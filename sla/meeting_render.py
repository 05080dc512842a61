"""A meeting report's sections as Markdown, CSV (one tidy long table), JSON or one
self-contained HTML page with inline SVG charts (no script, no network; every text escaped).

Markdown and HTML show a rate as "93.1% (27/29)"; CSV and JSON keep plain numbers (the rate,
met and due apart). Untrusted text goes through `store.text.safe` (HTML then escapes it);
JSON keeps raw values, as `tafang report --json` always has.
"""

from __future__ import annotations

import csv
import html
import io
import json
from typing import Any

from tafang.sla import svg
from tafang.sla.meeting import Chart, Column, Inputs, Section, Table, Value, sections
from tafang.sla.reports import report_json
from tafang.store.assessment import Rate
from tafang.store.text import md, safe

FORMATS = ("md", "csv", "json", "html")
CSV_HEAD = ("section", "table", "row", "name", "measure", "value", "met", "due")


def render(i: Inputs, fmt: str) -> str:
    secs = sections(i)
    if fmt == "json":
        return json.dumps(as_json(i, secs), ensure_ascii=False, indent=2) + "\n"
    if fmt == "csv":
        return as_csv(secs)
    if fmt == "html":
        return as_html(i, secs)
    return as_markdown(i, secs)


def span(i: Inputs) -> str:
    tz = i.tz
    return (
        f"{i.start.astimezone(tz):%Y-%m-%d %H:%M} – {i.end.astimezone(tz):%Y-%m-%d %H:%M}"
        f" ({i.d.timezone})"
    )


# ---- cells -------------------------------------------------------------------------------------
def duration(s: float | None) -> str:
    if s is None:
        return "-"
    s = round(s)
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def cell(v: Value, c: Column) -> str:
    """A value as Markdown and HTML show it (before escaping)."""
    if v is None:
        return "-"
    if isinstance(v, Rate):
        return f"{100 * v.met / v.due:.1f}% ({v.met}/{v.due})" if v.due else f"- (0/{v.due})"
    if c.kind == "seconds" and isinstance(v, int | float):
        return duration(v)
    if isinstance(v, float):
        return f"{v:.1f}"
    return safe(str(v))


def _plain(v: Value) -> Any:
    if isinstance(v, Rate):
        return {"met": v.met, "due": v.due, "rate": None if v.value is None else round(v.value, 4)}
    if isinstance(v, float):
        return round(v, 3)
    return v


def plain(t: Table, row: tuple[Value, ...]) -> dict[str, Any]:
    """A table row as JSON keeps it: column key → plain value ({met, due, rate} for a rate)."""
    return {c.key: _plain(v) for c, v in zip(t.columns, row, strict=True)}


# ---- JSON ---------------------------------------------------------------------------------------
def as_json(i: Inputs, secs: list[Section]) -> dict[str, Any]:
    """The earlier report's keys (cases, rates, by_channel, …) and the sections."""
    out = report_json(i.overview, i.d)
    out["kind"] = i.kind
    out["sections"] = [
        {
            "key": s.key,
            "title": s.title,
            "note": s.note,
            "tables": [
                {
                    "key": t.key,
                    "title": t.title,
                    "columns": [
                        {"key": c.key, "label": c.label, "kind": c.kind} for c in t.columns
                    ],
                    "rows": [plain(t, row) for row in t.rows],
                }
                for t in s.tables
            ],
        }
        for s in secs
    ]
    return out


# ---- CSV ----------------------------------------------------------------------------------------
def _csv_text(s: str) -> str:
    s = safe(s)
    return "'" + s if s[:1] in ("=", "+", "-", "@") else s  # no formulas in spreadsheets


def as_csv(secs: list[Section]) -> str:
    """One tidy long table: a row per (table row, measure), plain numbers."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_HEAD)
    for s in secs:
        for t in s.tables:
            for row in t.rows:
                _csv_rows(w, s, t, row)
    return buf.getvalue()


def _csv_rows(w: Any, s: Section, t: Table, row: tuple[Value, ...]) -> None:
    vals = dict(zip((c.key for c in t.columns), row, strict=True))
    text_cols = [c for c in t.columns if c.kind == "text"]
    key = str(vals[text_cols[0].key]) if text_cols else ""
    name = str(vals.get("name") or "")
    for c in t.columns:
        if c.kind == "text":
            continue
        v = vals[c.key]
        if isinstance(v, Rate):
            rate = "" if v.value is None else f"{v.value:.4f}"
            w.writerow((s.key, t.key, _csv_text(key), _csv_text(name), c.key, rate, v.met, v.due))
        else:
            value = "" if v is None else (f"{v:.1f}" if isinstance(v, float) else v)
            w.writerow((s.key, t.key, _csv_text(key), _csv_text(name), c.key, value, "", ""))


# ---- Markdown -----------------------------------------------------------------------------------
def as_markdown(i: Inputs, secs: list[Section]) -> str:
    out = [f"# {md(i.d.name)} — {i.title}", "", span(i), ""]
    for s in secs:
        out += [f"## {s.title}", ""]
        if s.note:
            out += [s.note, ""]
        for t in s.tables:
            if len(s.tables) > 1:
                out += [f"### {t.title}", ""]
            out.append("| " + " | ".join(c.label for c in t.columns) + " |")
            out.append("|" + "".join("---:|" if c.kind != "text" else "---|" for c in t.columns))
            for row in t.rows:
                cells = [_md_cell(v, c) for c, v in zip(t.columns, row, strict=True)]
                out.append("| " + " | ".join(cells) + " |")
            out.append("")
    return "\n".join(out)


def _md_cell(v: Value, c: Column) -> str:
    """Text from a feed (a channel, a grid, a name) written so Markdown shows it literally:
    no link, image, HTML or extra column out of `[a](javascript:…)` or `<script>`."""
    if isinstance(v, str):
        return md(v)
    return cell(v, c).replace("|", "\\|")


# ---- HTML ---------------------------------------------------------------------------------------
_CSS = (
    "body{font-family:'Noto Sans CJK SC','Microsoft YaHei',sans-serif;margin:24px;color:#222}"
    "table{border-collapse:collapse;margin:8px 0 20px;font-size:13px}"
    "th,td{border:1px solid #ccc;padding:3px 8px}th{background:#f0f3f7}"
    "td.n{text-align:right;font-variant-numeric:tabular-nums}"
    "h2{border-bottom:2px solid #2b6cb0;padding-bottom:4px;margin-top:32px}"
    ".note{color:#555;font-size:12px}.charts svg{margin:6px 18px 6px 0}"
)


def _chart(c: Chart) -> str:
    draw = svg.bars if c.kind == "bars" else svg.line
    return draw(c.title, c.labels, c.values, c.percent)


def _html_table(t: Table) -> str:
    e = html.escape
    head = "".join(f"<th>{e(c.label)}</th>" for c in t.columns)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td{'' if c.kind == 'text' else ' class=n'}>{e(cell(v, c))}</td>"
            for c, v in zip(t.columns, row, strict=True)
        )
        + "</tr>"
        for row in t.rows
    )
    return f"<h3>{e(t.title)}</h3><table><tr>{head}</tr>{body}</table>"


def as_html(i: Inputs, secs: list[Section]) -> str:
    e = html.escape
    title = f"{safe(i.d.name)} — {i.title}"
    parts = [
        "<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'>",
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(title)}</h1><p>{e(span(i))}</p>",
    ]
    for s in secs:
        parts.append(f"<section id='{e(s.key)}'><h2>{e(s.title)}</h2>")
        if s.note:
            parts.append(f"<p class='note'>{e(s.note)}</p>")
        if s.charts:
            parts.append("<div class='charts'>" + "".join(_chart(c) for c in s.charts) + "</div>")
        parts += [_html_table(t) for t in s.tables]
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
