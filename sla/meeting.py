"""Meeting reports (日会商 / 周研判 / 月分析 / ad hoc): a list of sections, each a few tables
and charts of plain values, rendered to Markdown, CSV, JSON or HTML by `meeting_render`.

To add a figure to every report, write a function `Inputs -> Section | None` and add it to
`SECTIONS` (the one place; ARCHITECTURE.md points here). It reads through `Inputs`, which
reads each thing once per report (`inputs.rows`, `inputs.assessment`, `inputs.overview`) and
hands out the store for anything else; return None to leave the section out. Values are
plain: `str`, `int`, `float | None` (None prints as "-"), or a `Rate` (met of due), which
Markdown and HTML show as "93.1% (27/29)" and CSV and JSON keep as three numbers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from typing import Literal
from zoneinfo import ZoneInfo

from tafang.sla.reports import Rate as LegacyRate
from tafang.sla.reports import Report, period
from tafang.store.assessment import (
    BIT,
    RATES,
    STAGES,
    Assessment,
    Facts,
    Rate,
    Tally,
    facts,
    tally,
)
from tafang.store.cases import Store
from tafang.store.config import Deployment
from tafang.store.labels import labels

Value = str | int | float | Rate | None
KINDS = ("daily", "weekly", "monthly", "range")


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: Literal["text", "int", "float", "rate", "seconds"] = "int"


@dataclass(frozen=True)
class Table:
    key: str
    title: str
    columns: tuple[Column, ...]
    rows: list[tuple[Value, ...]]


@dataclass(frozen=True)
class Chart:
    """`bars`: one bar a label; `line`: values in order (a trend). `percent`: values in 0–1."""

    kind: Literal["bars", "line"]
    title: str
    labels: list[str]
    values: list[float | None]
    percent: bool = False


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    tables: list[Table] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    note: str = ""


@dataclass
class Inputs:
    """What sections read: the period, the deployment, and data read once per report."""

    store: Store
    d: Deployment
    kind: str
    start: datetime
    end: datetime
    title: str
    now: datetime

    @property
    def cutoff(self) -> datetime:
        return min(self.end, self.now)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.d.timezone)

    @cached_property
    def rows(self) -> Facts:
        """One row of facts per case (store.assessment.facts)."""
        return facts(self.store, self.start, self.end, self.cutoff)

    @cached_property
    def assessment(self) -> Assessment:
        return tally(self.rows, self.d, self.start, self.end, self.cutoff)

    @cached_property
    def overview(self) -> Report:
        """The earlier report's figures (its JSON keys stay), from the same facts."""
        a = self.assessment
        o = a.overview
        rep = Report(self.title, self.start, self.end, o.cases)
        rep.by_status, rep.by_channel, rep.by_category = o.by_status, o.by_channel, o.by_category
        rep.hotspots, rep.escalated, rep.triage = o.by_grid, o.escalated, o.triage
        rep.stages = _legacy(a.total)
        rep.by_squad = {k: _legacy(t) for k, t in a.by["squad"].items()}
        rep.by_circle = {k: _legacy(t) for k, t in a.by["circle"].items()}
        sep = a.total.rates["separation"]
        rep.separation = LegacyRate(sep.met, sep.due)
        return rep


def _legacy(t: Tally) -> dict[str, LegacyRate]:
    return {
        s: LegacyRate(t.rates[s].met, t.rates[s].due) for s in ("respond", "dispatch", "arrive")
    }


def both(key: str, **params: object) -> str:
    """A heading as the meetings read it: Chinese, then English."""
    zh, en = labels("zh").t(key, **params), labels("en").t(key, **params)
    return zh if zh == en else f"{zh} {en}"


def _rate_columns() -> tuple[Column, ...]:
    return tuple(Column(r, both(f"assess.{r}"), "rate") for r in RATES)


def _names(d: Deployment, dim: str) -> dict[str, str]:
    if dim == "officer":
        return {code: o.name for code, (_s, o) in d.officers_by_code.items()}
    if dim == "squad":
        return {s.code: s.name for s in d.squads}
    if dim == "circle":
        return {c.code: c.name for c in d.tower.enforcement_circles}
    if dim == "channel":
        return {c.code: c.name for c in d.channels}
    if dim == "category":
        return {c.code: c.name for c in d.categories}
    return {g.code: g.name for g in d.case_groups}


# ---- the sections ----------------------------------------------------------------------------
def overview(i: Inputs) -> Section:
    rep, a = i.overview, i.assessment
    d = i.d
    summary = Table(
        "summary",
        both("report.summary"),
        (
            Column("cases", both("assess.cases")),
            Column("escalated", "上报 escalated"),
            Column("triage", "待核 triage"),
            Column("supervised", both("assess.supervised")),
        ),
        [(rep.total, rep.escalated, rep.triage, a.total.supervised)],
    )
    status = labels("zh")
    tables = [
        summary,
        _counts("by_status", both("report.by_status"), rep.by_status, status.status),
        _counts("by_channel", both("report.by_channel"), rep.by_channel, _names(d, "channel").get),
        _counts(
            "by_category", both("report.by_category"), rep.by_category, _names(d, "category").get
        ),
        _counts(
            "hotspots",
            both("report.hotspots"),
            Counter(dict(rep.hotspots.most_common(10))),
            {g.code: g.label for g in d.tower.grids}.get,
        ),
    ]
    names = _names(d, "channel")
    chart = Chart(
        "bars",
        both("report.by_channel"),
        [names.get(k, k) for k, _ in rep.by_channel.most_common()],
        [float(v) for _, v in rep.by_channel.most_common()],
    )
    return Section("overview", both("assess.overview"), tables, [chart])


def _counts(key: str, title: str, c: Counter[str], name: Callable[[str], str | None]) -> Table:
    return Table(
        key,
        title,
        (Column("code", "code", "text"), Column("name", "name", "text"), Column("cases", "cases")),
        [(k, name(k) or "", v) for k, v in c.most_common()],
    )


def rates(i: Inputs) -> Section:
    t = i.assessment.total
    table = Table(
        "rates",
        both("assess.rates"),
        (
            Column("measure", "measure", "text"),
            Column("name", "name", "text"),
            Column("value", "rate", "rate"),
        ),
        [(r, both(f"assess.{r}"), t.rates[r]) for r in RATES],
    )
    chart = Chart(
        "bars",
        both("assess.rates"),
        [both(f"assess.{r}") for r in RATES],
        [t.rates[r].value for r in RATES],
        percent=True,
    )
    note = (
        "rate = met ÷ due. 1-3-5 and 按期处置: due when the deadline passed or the stage was "
        "reached; 结案率: closed ÷ resolve deadline passed or closed; 返工 ÷ handled; "
        "回退 ÷ dispatched; 延期 (held or extended) ÷ filed; 非处置人结案: closes by someone "
        "other than the handler ÷ closes with both known. Void and merged cases are left out."
    )
    return Section("rates", both("assess.rates"), [table], [chart], note)


def trend(i: Inputs) -> Section | None:
    """Cases per local day (per hour for a one-day report) and their on-time response."""
    hourly = i.end - i.start <= timedelta(days=1)
    tz = i.tz
    counts: Counter[str] = Counter()
    on_time: dict[str, Rate] = {}
    # A bucket by arithmetic, not a datetime per case: the zone's offset at the period's
    # start (Asia/Shanghai keeps one; elsewhere a DST change shifts a day's edge by an hour).
    offset = (i.start.astimezone(tz).utcoffset() or timedelta()).total_seconds()
    width = 3600 if hourly else 86400
    names = _names_by_bucket(i, hourly, offset, width)
    at = i.rows.at
    status, received, sig = at["status"], at["received_s"], at["sig"]
    due, met = BIT["due_respond"], BIT["met_respond"]
    for r in i.rows.rows:
        if r[status] in ("void", "merged"):
            continue
        k = names[int((r[received] + offset) // width)]
        counts[k] += 1
        if r[sig] & due:
            on_time.setdefault(k, Rate()).add(bool(r[sig] & met))
    keys = _buckets(i, hourly)
    table = Table(
        "trend",
        both("assess.trend"),
        (
            Column("bucket", "hour" if hourly else "date", "text"),
            Column("cases", both("assess.cases")),
            Column("respond", both("assess.respond"), "rate"),
        ),
        [(k, counts.get(k, 0), on_time.get(k, Rate())) for k in keys],
    )
    charts = [
        Chart("line", both("assess.trend"), keys, [float(counts.get(k, 0)) for k in keys]),
        Chart(
            "line",
            both("assess.respond"),
            keys,
            [on_time[k].value if k in on_time else None for k in keys],
            percent=True,
        ),
    ]
    return Section("trend", both("assess.trend"), [table], charts)


def _names_by_bucket(i: Inputs, hourly: bool, offset: float, width: int) -> dict[int, str]:
    """Bucket number (local seconds // width) → its label, for every bucket of the period."""
    out: dict[int, str] = {}
    t = i.start.timestamp()
    while t < i.end.timestamp():
        local = datetime.fromtimestamp(t, UTC) + timedelta(seconds=offset)
        out[int((t + offset) // width)] = f"{local:%H}:00" if hourly else f"{local:%Y-%m-%d}"
        t += width
    return out


def _buckets(i: Inputs, hourly: bool) -> list[str]:
    if hourly:
        return [f"{h:02d}:00" for h in range(24)]
    first = i.start.astimezone(i.tz).date()
    last = (i.end - timedelta(microseconds=1)).astimezone(i.tz).date()
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def stages(i: Inputs) -> Section:
    t = i.assessment.total
    rows: list[tuple[Value, ...]] = []
    for s, _a, _b in STAGES:
        n, mean, p90 = t.stage(s)
        rows.append((s, both(f"assess.stage_{s}"), n, mean, p90))
    table = Table(
        "stages",
        both("assess.stages"),
        (
            Column("stage", "stage", "text"),
            Column("name", "name", "text"),
            Column("n", "cases"),
            Column("mean_s", "mean (s)", "seconds"),
            Column("p90_s", "p90 (s)", "seconds"),
        ),
        rows,
    )
    return Section("stages", both("assess.stages"), [table])


def dimension(dim: str) -> Callable[[Inputs], Section | None]:
    """The section of one dimension: a league table, most cases first."""

    def section(i: Inputs) -> Section | None:
        by = i.assessment.by[dim]
        if not by:
            return None
        names = _names(i.d, dim)
        ordered = sorted(by.items(), key=lambda kv: (-kv[1].cases, kv[0]))
        table = Table(
            f"by_{dim}",
            both(f"assess.{dim}"),
            (
                Column(dim, dim, "text"),
                Column("name", "name", "text"),
                Column("cases", both("assess.cases")),
                Column("supervised", both("assess.supervised")),
                *_rate_columns(),
                Column("handle_mean_s", "处置平均 handle mean (s)", "seconds"),
                Column("handle_p90_s", "处置P90 handle p90 (s)", "seconds"),
            ),
            [_league_row(k, names.get(k, ""), t) for k, t in ordered],
        )
        return Section(f"by_{dim}", both(f"assess.{dim}"), [table])

    section.__name__ = f"by_{dim}"
    return section


def _league_row(key: str, name: str, t: Tally) -> tuple[Value, ...]:
    _n, mean, p90 = t.stage("handle")
    return (key, name, t.cases, t.supervised, *(t.rates[r] for r in RATES), mean, p90)


def _joint(name: str) -> Callable[[Inputs], Section | None]:
    """Issue 12's sections (sla/meeting_joint.py: 综合查一次, partner teams, risk points),
    imported when a report is made (that module builds on this one's types)."""

    def section(i: Inputs) -> Section | None:
        from tafang.sla import meeting_joint

        return getattr(meeting_joint, name)(i)

    section.__name__ = name
    return section


SECTIONS: list[Callable[[Inputs], Section | None]] = [
    rates,
    trend,
    stages,
    *(dimension(dim) for dim in ("squad", "officer", "circle", "group", "channel", "category")),
    *(_joint(n) for n in ("joint_inspections", "partner_teams", "risk_points")),
    overview,
]
"""The report's sections in order. Add one here (see the module's docstring)."""


# ---- periods ----------------------------------------------------------------------------------
def inputs_for(
    store: Store,
    d: Deployment,
    kind: str,
    *,
    day: date | None = None,
    start: date | None = None,
    end: date | None = None,
    now: datetime | None = None,
) -> Inputs:
    """The period of a report: `kind` daily/weekly/monthly around `day`, or "range" from
    `start` to `end` (local days, both included)."""
    now = now or datetime.now(UTC)
    tz = ZoneInfo(d.timezone)
    if kind == "range":
        if start is None or end is None:
            raise ValueError("a range report needs --from and --to")
        if end < start:
            raise ValueError(f"--to {end} is before --from {start}")
        t0 = datetime(start.year, start.month, start.day, tzinfo=tz).astimezone(UTC)
        stop = end + timedelta(days=1)
        t1 = datetime(stop.year, stop.month, stop.day, tzinfo=tz).astimezone(UTC)
        title = f"{labels('zh').t('assess.range')} {labels('en').t('assess.range')} {start} – {end}"
        return Inputs(store, d, kind, t0, t1, title, now)
    t0, t1, title = period(kind, day or now.astimezone(tz).date(), tz)
    return Inputs(store, d, kind, t0, t1, title, now)


def sections(i: Inputs) -> list[Section]:
    return [s for f in SECTIONS if (s := f(i)) is not None]
