"""Reports for the daily, weekly and monthly meetings (日会商、周研判、月分析).

1-3-5 rates use one denominator each, printed with the rate: a stage is *due* for a case
when its deadline fell inside the period's end or the case reached the stage; it is *met*
when the stage was reached by its deadline (按时响应率 / 按时派遣率 / 按时到场率).
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select
from tafang.store.cases import CASES, Store
from tafang.store.config import Deployment
from tafang.store.labels import labels as catalogue
from tafang.store.record import AUDIT
from tafang.store.text import safe

STAGES = (
    ("respond", "acknowledged_at", catalogue("zh").t("rate.respond")),
    ("dispatch", "dispatched_at", catalogue("zh").t("rate.dispatch")),
    ("arrive", "arrived_at", catalogue("zh").t("rate.arrive")),
)


def _both(key: str) -> str:
    """A heading in both languages, as the meetings read them: "Summary 概况"."""
    return f"{catalogue('en').t(key)} {catalogue('zh').t(key)}"


@dataclass
class Rate:
    met: int = 0
    due: int = 0

    @property
    def pct(self) -> str:
        return f"{100 * self.met / self.due:.1f}%" if self.due else "-"

    @property
    def cell(self) -> str:
        return f"{self.pct} ({self.met}/{self.due})"


@dataclass
class Report:
    title: str
    start: datetime
    end: datetime
    total: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    by_channel: Counter[str] = field(default_factory=Counter)
    by_category: Counter[str] = field(default_factory=Counter)
    hotspots: Counter[str] = field(default_factory=Counter)
    stages: dict[str, Rate] = field(default_factory=lambda: {s: Rate() for s, _, _ in STAGES})
    by_squad: dict[str, dict[str, Rate]] = field(default_factory=dict)
    by_circle: dict[str, dict[str, Rate]] = field(default_factory=dict)
    escalated: int = 0
    triage: int = 0
    self_found: int = 0
    """自查自处: found and handled on patrol; apart from `total` and the 1-3-5 rates (their
    times are the officer's, no clock ran), counted by category and grid like any case."""
    separation: Rate = field(default_factory=Rate)
    """Closes in the period (due) and those by someone other than the handler (met): 监管分离."""


def _zh_en(key: str) -> str:
    """A title with the Chinese first: "日会商 Daily report"."""
    return f"{catalogue('zh').t(key)} {catalogue('en').t(key)}"


def period(kind: str, day: date, tz: ZoneInfo) -> tuple[datetime, datetime, str]:
    if kind == "daily":
        start = day
        end = day + timedelta(days=1)
        name = f"{_zh_en('report.daily')} {day.isoformat()}"
    elif kind == "weekly":
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=7)
        last = (end - timedelta(days=1)).isoformat()
        name = f"{_zh_en('report.weekly')} {start.isoformat()} – {last}"
    elif kind == "monthly":
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
        name = f"{_zh_en('report.monthly')} {start.strftime('%Y-%m')}"
    else:
        raise ValueError(f"unknown period {kind!r}")
    to_utc = lambda d: datetime(d.year, d.month, d.day, tzinfo=tz).astimezone(UTC)  # noqa: E731
    return to_utc(start), to_utc(end), name


def build(store: Store, d: Deployment, kind: str, day: date, now: datetime | None = None) -> Report:
    start, end, title = period(kind, day, ZoneInfo(d.timezone))
    return build_range(store, d, start, end, title, now)


_COLUMNS = (
    "source",
    "category",
    "grid",
    "status",
    "assignee",
    "assignee_kind",
    "escalation_level",
    "triage",
    "respond_due",
    "dispatch_due",
    "arrive_due",
    "acknowledged_at",
    "dispatched_at",
    "arrived_at",
    "self_found",
)
"""What a period report reads of each case received in it."""


def build_range(
    store: Store, d: Deployment, start: datetime, end: datetime, title: str, now: datetime | None
) -> Report:
    """The report of cases received in [start, end) (any period: sla/meeting.py)."""
    now = now or datetime.now(UTC)
    cutoff = min(end, now)
    rep = Report(title, start, end)
    squad_of = {code: s.code for code, (s, _o) in d.officers_by_code.items()}
    q = select(*(CASES.c[n] for n in _COLUMNS))
    q = q.where(CASES.c.received_at >= start).where(CASES.c.received_at < end)
    with store.read_engine.connect() as conn:
        rows = conn.execute(q).all()
        rep.separation = _separation(conn, start, end)
    for r in rows:
        _count(rep, r, d, squad_of, cutoff)
    return rep


def _count(rep: Report, r: Any, d: Deployment, squad_of: dict[str, str], cutoff: datetime) -> None:
    """One case into the report's tallies (self-found cases count apart from reports)."""
    rep.by_category[r.category or "?"] += 1
    rep.hotspots[r.grid or "?"] += 1
    if r.self_found:
        rep.self_found += 1
        return
    rep.total += 1
    rep.by_status[r.status] += 1
    rep.by_channel[r.source] += 1
    rep.escalated += r.escalation_level > 0
    rep.triage += bool(r.triage)
    squad = squad_of.get(r.assignee or "") or (r.assignee if r.assignee_kind == "squad" else None)
    grid = d.grids_by_code.get(r.grid or "")
    circle = grid.circle if grid is not None else None
    for stage, reached_col, _ in STAGES:
        due_at, reached = getattr(r, f"{stage}_due"), getattr(r, reached_col)
        if due_at is None or (reached is None and due_at > cutoff):
            continue
        met = reached is not None and reached <= due_at
        for bucket in (
            rep.stages,
            rep.by_squad.setdefault(squad, {}) if squad else None,
            rep.by_circle.setdefault(circle, {}) if circle else None,
        ):
            if bucket is None:
                continue
            rate = bucket.setdefault(stage, Rate())
            rate.due += 1
            rate.met += met


def _separation(conn: Connection, start: datetime, end: datetime) -> Rate:
    """Closes recorded in [start, end) and how many were by someone other than the operator
    who last recorded the case's handling before the close (should be all: 监管分离)."""
    in_period = (AUDIT.c.action == "close") & (AUDIT.c.at >= start) & (AUDIT.c.at < end)
    closes = conn.execute(
        select(AUDIT.c.seq, AUDIT.c.case_id, AUDIT.c.operator).where(in_period)
    ).all()
    closed_ids = select(AUDIT.c.case_id).where(in_period)
    handles: dict[int, list[tuple[int, str]]] = {}
    for h in conn.execute(
        select(AUDIT.c.seq, AUDIT.c.case_id, AUDIT.c.operator)
        .where(AUDIT.c.action == "handle")
        .where(AUDIT.c.case_id.in_(closed_ids))
        .order_by(AUDIT.c.seq)
    ):
        handles.setdefault(h.case_id, []).append((h.seq, h.operator))
    out = Rate()
    for c in closes:
        before = [op for seq, op in handles.get(c.case_id, []) if seq < c.seq]
        out.due += 1
        out.met += not before or before[-1] != c.operator
    return out


def _rates(b: dict[str, Rate]) -> list[str]:
    return [b.get(s, Rate()).cell for s, _, _ in STAGES]


def _summary(rep: Report, stage_head: list[str]) -> tuple[str, list[str], list[list[str]]]:
    """The report's first table: totals, the 1-3-5 stages, 监管分离 and 自查自处."""
    head = ["cases", "escalated", "triage", *stage_head]
    head += ["closed by another (监管分离)", "self-found (自查自处)"]
    row = [str(rep.total), str(rep.escalated), str(rep.triage), *_rates(rep.stages)]
    row += [rep.separation.cell, str(rep.self_found)]
    return _both("report.summary"), head, [row]


def _tables(rep: Report, d: Deployment) -> list[tuple[str, list[str], list[list[str]]]]:
    names = {c.code: c.name for c in d.channels}
    cats = {c.code: c.name for c in d.categories}
    labels = {g.code: g.label for g in d.tower.grids}
    squads = {s.code: s.name for s in d.squads}
    circles = {c.code: c.name for c in d.tower.enforcement_circles}
    stage_head = [f"{label} ({s})" for s, _, label in STAGES]
    en, zh = catalogue("en"), catalogue("zh")
    circle_heading = f"{en.t('report.by_circle', circle=en.level(1))} " + zh.t(
        "report.by_circle", circle=zh.level(1)
    )

    return [
        _summary(rep, stage_head),
        (
            _both("report.by_status"),
            ["status", "cases"],
            [[k, str(v)] for k, v in rep.by_status.most_common()],
        ),
        (
            _both("report.by_channel"),
            ["channel", "cases"],
            [[names.get(k, k), str(v)] for k, v in rep.by_channel.most_common()],
        ),
        (
            _both("report.by_category"),
            ["category", "cases"],
            [[f"{k} {cats.get(k, '')}".strip(), str(v)] for k, v in rep.by_category.most_common()],
        ),
        (
            _both("report.hotspots"),
            ["grid", "cases"],
            [[labels.get(k, k), str(v)] for k, v in rep.hotspots.most_common(10)],
        ),
        (
            _both("report.by_squad"),
            ["squad", *stage_head],
            [[squads.get(k, k), *_rates(v)] for k, v in sorted(rep.by_squad.items())],
        ),
        (
            circle_heading,
            ["circle", *stage_head],
            [[circles.get(k, k), *_rates(v)] for k, v in sorted(rep.by_circle.items())],
        ),
    ]


def _counts(c: Counter[str], names: dict[str, str], key: str) -> list[dict[str, object]]:
    return [{key: k, "name": names.get(k), "cases": v} for k, v in c.most_common()]


def _rates(b: dict[str, Rate]) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for s, _, _ in STAGES:
        r = b.get(s, Rate())
        out[s] = {"met": r.met, "due": r.due, "rate": round(r.met / r.due, 4) if r.due else None}
    return out


def report_json(rep: Report, d: Deployment) -> dict[str, object]:
    """`--format json`: the report's numbers, raw values kept (no display sanitising)."""
    squads = {s.code: s.name for s in d.squads}
    circles = {c.code: c.name for c in d.tower.enforcement_circles}
    return {
        "deployment": d.name,
        "title": rep.title,
        "start": rep.start.isoformat(),
        "end": rep.end.isoformat(),
        "timezone": d.timezone,
        "cases": rep.total,
        "escalated": rep.escalated,
        "triage": rep.triage,
        "self_found": rep.self_found,
        "rates": _rates(rep.stages),
        "by_status": dict(rep.by_status.most_common()),
        "by_channel": _counts(rep.by_channel, {c.code: c.name for c in d.channels}, "channel"),
        "by_category": _counts(rep.by_category, {c.code: c.name for c in d.categories}, "category"),
        "hotspots": _counts(rep.hotspots, {g.code: g.label for g in d.tower.grids}, "grid")[:10],
        "by_squad": [
            {"squad": k, "name": squads.get(k), "rates": _rates(v)}
            for k, v in sorted(rep.by_squad.items())
        ],
        "by_circle": [
            {"circle": k, "name": circles.get(k), "rates": _rates(v)}
            for k, v in sorted(rep.by_circle.items())
        ],
        "note": "rate = met / due; a stage is due when its deadline passed or the case reached it",
    }


def _csv_cell(s: str) -> str:
    return "'" + s if s[:1] in ("=", "+", "-", "@") else s  # no formulas in spreadsheets


def render(rep: Report, d: Deployment, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(report_json(rep, d), ensure_ascii=False, indent=2) + "\n"
    tables = [
        (name, head, [[safe(c) for c in row] for row in rows])
        for name, head, rows in _tables(rep, d)
    ]
    tz = ZoneInfo(d.timezone)
    span = (
        f"{rep.start.astimezone(tz):%Y-%m-%d %H:%M} – {rep.end.astimezone(tz):%Y-%m-%d %H:%M}"
        f" ({d.timezone})"
    )
    note = "Rates: met ÷ due; a stage is due when its deadline passed or the case reached it."
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        for name, head, rows in tables:
            w.writerow([name])
            w.writerow(head)
            w.writerows([[_csv_cell(c) for c in row] for row in rows])
            w.writerow([])
        return buf.getvalue()
    if fmt == "html":
        parts = [
            f"<!doctype html><meta charset='utf-8'><title>{html.escape(rep.title)}</title>",
            f"<h1>{html.escape(d.name)} — {html.escape(rep.title)}</h1>",
            f"<p>{html.escape(span)}. {html.escape(note)}</p>",
        ]
        for name, head, rows in tables:
            parts.append(
                f"<h2>{html.escape(name)}</h2><table border='1'><tr>"
                + "".join(f"<th>{html.escape(h)}</th>" for h in head)
                + "</tr>"
            )
            parts += [
                "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows
            ]
            parts.append("</table>")
        return "\n".join(parts) + "\n"
    out = [f"# {d.name} — {rep.title}", "", span, "", note, ""]
    for name, head, rows in tables:
        out += [f"## {name}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
        out.append("")
    return "\n".join(out)


def render_report(
    store: Store,
    d: Deployment,
    kind: str,
    *,
    day: str | None = None,
    fmt: str = "md",
    now: datetime | None = None,
) -> str:
    """The `tafang report` text; `day` is any YYYY-MM-DD inside the period."""
    tz = ZoneInfo(d.timezone)
    if day:
        try:
            the_day = date.fromisoformat(day)
        except ValueError as e:
            raise ValueError(f"--date must be YYYY-MM-DD, not {day!r}") from e
    else:
        the_day = (now or datetime.now(UTC)).astimezone(tz).date()
    return render(build(store, d, kind, the_day, now), d, fmt)
