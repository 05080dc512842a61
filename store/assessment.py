"""Assessment (人员考核): each figure per officer, squad, circle, channel, category and case
group, over any period, with its denominator.

The cases received in [start, end) are the base; void and merged ones are not cases (作废,
duplicates) and are left out. One query reads a row of facts per case (the case's own
columns; its `case_history` row if it was imported; its moves on the record, counted per
case by one GROUP BY), and one pass in Python adds them up per dimension: the dimensions
(an officer's squad, a grid's circle, a category's group) live in the config, not in the
database. Definitions (DOMAIN.md, one denominator each):

- 1-3-5 (按时响应 / 派遣 / 到场): due = the stage's deadline passed by `cutoff` (the period's
  end, or now) or the case reached the stage; met = reached by the deadline.
- 按期处置率 (handled_on_time): the same for handling against the resolve deadline.
- 结案率 (closed): due = the resolve deadline passed by `cutoff` or the case was closed;
  met = closed.
- 返工率 (reworked ÷ handled), 回退率 (returned ÷ dispatched), 延期率 (extended ÷ filed):
  cases with at least one such move. 延期 counts holds (挂账) and imported extensions.
- 督办 (supervised): cases flagged.
- 监管分离 (separation): closes whose closer and handler are both known; met = another person.
- Stage times: respond = acknowledged − received, dispatch = dispatched − acknowledged,
  arrive = arrived − dispatched, handle = handled − arrived, close = closed − handled; mean
  and p90 (nearest rank) in seconds over the cases that have both ends.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import reduce
from operator import add, itemgetter
from typing import Any

from sqlalchemy import Float, and_, case, cast, func, literal, select
from tafang.store.cases import CASES, Store
from tafang.store.config import Deployment
from tafang.store.models import CaseHistory
from tafang.store.record import AUDIT

HISTORY = CaseHistory.__table__
DIMENSIONS = ("officer", "squad", "circle", "channel", "category", "group")
RATES = (
    "respond",
    "dispatch",
    "arrive",
    "handled_on_time",
    "closed",
    "reworked",
    "returned",
    "extended",
    "separation",
)
"""Every rate of a `Tally`, in the order reports show them."""
LOWER_IS_BETTER = frozenset({"reworked", "returned", "extended"})
STAGES = (
    ("respond", "received_at", "acknowledged_at"),
    ("dispatch", "acknowledged_at", "dispatched_at"),
    ("arrive", "dispatched_at", "arrived_at"),
    ("handle", "arrived_at", "handled_at"),
    ("close", "handled_at", "closed_at"),
)
_CLOCKS = (
    ("respond", "respond_due", "acknowledged_at"),
    ("dispatch", "dispatch_due", "dispatched_at"),
    ("arrive", "arrive_due", "arrived_at"),
    ("handled_on_time", "resolve_due", "handled_at"),
)
_NOT_CASES = ("void", "merged")
_MOVES = {
    "return": "returns",
    "rework": "reworks",
    "hold": "extensions",
    "supervise": "supervisions",
}


@dataclass
class Rate:
    """`met` of `due`: both printed beside the rate."""

    met: int = 0
    due: int = 0

    @property
    def value(self) -> float | None:
        return self.met / self.due if self.due else None

    def add(self, met: bool) -> None:
        self.due += 1
        self.met += met


# A tally's counters, in one flat list: cases, supervised, then met and due per rate.
_CASES, _SUPERVISED = 0, 1
_MET = {r: 2 + 2 * k for k, r in enumerate(RATES)}
_WIDTH = 2 + 2 * len(RATES)
FLAGS = ("n_cases", "n_supervised", *(f"{x}_{r}" for r in RATES for x in ("met", "due")))
"""The counters a case may add one to, in the order of a tally's counters."""
BIT = {f: 1 << k for k, f in enumerate(FLAGS)}
"""A fact row's `sig` column holds its counters as bits (one integer, not 20 columns: a year
is 60k rows, and each column fetched is 60k Python objects): `row[sig] & BIT["due_respond"]`."""
_STAGE_AT = {s: k for k, (s, _a, _b) in enumerate(STAGES)}


class Tally:
    """The figures of one officer, squad, … (or of everything).

    Adding a case is two operations, as a year is 60k cases × 7 tallies: its signature (the
    counters it adds one to, as the bits of one integer: most cases share a few) is counted,
    and its row number kept
    for the stage times, which are read from the shared `spans` when asked for."""

    __slots__ = ("_n", "members", "sigs", "spans")

    def __init__(self, spans: list[list[Any]] | None = None) -> None:
        self.sigs: Counter[tuple[int, ...]] = Counter()
        self.members: list[int] = []
        self.spans = spans if spans is not None else [[] for _ in STAGES]
        self._n: list[int] | None = None

    @property
    def n(self) -> list[int]:
        if self._n is None:
            n = [0] * _WIDTH
            for sig, c in self.sigs.items():
                for i in range(_WIDTH):
                    if sig >> i & 1:
                        n[i] += c
            self._n = n
        return self._n

    @property
    def cases(self) -> int:
        return self.n[_CASES]

    @property
    def supervised(self) -> int:
        return self.n[_SUPERVISED]

    @property
    def rates(self) -> dict[str, Rate]:
        n = self.n
        return {r: Rate(n[i], n[i + 1]) for r, i in _MET.items()}

    def seconds(self, name: str) -> list[float]:
        col = self.spans[_STAGE_AT[name]]
        m = self.members
        if len(m) < 2:
            return [x for k in m if (x := col[k]) is not None]
        return [x for x in itemgetter(*m)(col) if x is not None]

    def stage(self, name: str) -> tuple[int, float | None, float | None]:
        """(n, mean, p90) seconds of a stage; p90 by nearest rank."""
        xs = self.seconds(name)
        if not xs:
            return 0, None, None
        xs.sort()
        # to the millisecond: SQLite's julianday carries a few microseconds of float error
        mean, p90 = sum(xs) / len(xs), xs[max(0, math.ceil(0.9 * len(xs)) - 1)]
        return len(xs), round(mean, 3), round(p90, 3)


@dataclass
class Overview:
    """Counts of every case received in the period (void and merged ones too)."""

    cases: int = 0
    escalated: int = 0
    triage: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    by_channel: Counter[str] = field(default_factory=Counter)
    by_category: Counter[str] = field(default_factory=Counter)
    by_grid: Counter[str] = field(default_factory=Counter)

    def count(self, rows: Sequence[Any], at: dict[str, int]) -> None:
        """Count `rows` (C-speed Counters over their columns)."""
        col = {c: itemgetter(at[c]) for c in ("status", "source", "category", "grid")}
        self.cases = len(rows)
        self.escalated = sum(1 for r in rows if r[at["escalation_level"]])
        self.triage = sum(1 for r in rows if r[at["triage"]])
        self.by_status = Counter(map(col["status"], rows))
        self.by_channel = Counter(map(col["source"], rows))
        self.by_category = Counter(x or "?" for x in map(col["category"], rows))
        self.by_grid = Counter(x or "?" for x in map(col["grid"], rows))


@dataclass
class Assessment:
    start: datetime
    end: datetime
    cutoff: datetime
    total: Tally = field(default_factory=Tally)
    overview: Overview = field(default_factory=Overview)
    by: dict[str, dict[str, Tally]] = field(default_factory=lambda: {d: {} for d in DIMENSIONS})


def _epoch(col: Any, sqlite: bool) -> Any:
    """Seconds since 1970 of a time column, in SQL (SQLite keeps UTC text; PostgreSQL a
    timestamptz): durations and buckets come back as numbers, not as datetimes to parse."""
    if sqlite:
        return (func.julianday(col) - 2440587.5) * 86400.0
    return cast(func.extract("epoch", col), Float)  # numeric otherwise: Decimal in Python


def _flag(cond: Any) -> Any:
    return case((cond, 1), else_=0)


def _facts_query(start: datetime, end: datetime, cutoff: datetime, sqlite: bool) -> Any:
    """A row per case: its keys, receipt, the counters it adds one to (`sig`: the bits of
    `FLAGS`) and its seconds per stage."""
    c = CASES.c
    in_period = and_(c.received_at >= start, c.received_at < end)
    moves = _moves(select(c.id).where(in_period))
    keys = [
        c[n]
        for n in (
            "id",
            "source",
            "category",
            "grid",
            "status",
            "assignee",
            "assignee_kind",
            "escalation_level",
            "triage",
        )
    ]
    bits = [x * BIT[n] for n, x in zip(FLAGS, _flags(moves, cutoff), strict=True)]
    sig = reduce(add, bits).label("sig")
    spans = [(_epoch(c[b], sqlite) - _epoch(c[a], sqlite)).label(f"s_{s}") for s, a, b in STAGES]
    return (
        select(*keys, _epoch(c.received_at, sqlite).label("received_s"), sig, *spans)
        .select_from(
            CASES.outerjoin(HISTORY, HISTORY.c.case_id == c.id).outerjoin(
                moves, moves.c.case_id == c.id
            )
        )
        .where(in_period)
    )


def _moves(ids: Any) -> Any:
    """Per case of `ids`: its 回退 / 返工 / 挂账 / 督办 moves on the record, its closer and
    handler (the last by name if there were several)."""
    a = AUDIT.c
    counted = [
        func.sum(case((a.action == act, 1), else_=0)).label(f"a_{col}")
        for act, col in _MOVES.items()
    ]
    return (
        select(
            a.case_id,
            *counted,
            func.max(case((a.action == "close", a.operator))).label("a_closer"),
            func.max(case((a.action == "handle", a.operator))).label("a_handler"),
        )
        .where(a.case_id.in_(ids))
        .where(a.action.in_([*_MOVES, "close", "handle"]))
        .group_by(a.case_id)
        .subquery("moves")
    )


def _flags(moves: Any, cutoff: datetime) -> list[Any]:
    """The expressions of `FLAGS` (see the module's docstring for each definition)."""
    c, h, m = CASES.c, HISTORY.c, moves.c

    def n(col: str) -> Any:  # imported count + moves on the record
        return func.coalesce(h[col], 0) + func.coalesce(m[f"a_{col}"], 0)

    closer = func.coalesce(func.nullif(h.closed_by, ""), m.a_closer)
    handler = func.coalesce(func.nullif(h.handled_by, ""), m.a_handler)
    due: dict[str, Any] = {}
    met: dict[str, Any] = {}
    for name, due_col, reached_col in _CLOCKS:
        d, r = c[due_col], c[reached_col]
        due[name] = d.is_not(None) & (r.is_not(None) | (d <= cutoff))
        met[name] = d.is_not(None) & r.is_not(None) & (r <= d)
    due["closed"] = c.resolve_due.is_not(None) & (
        c.closed_at.is_not(None) | (c.resolve_due <= cutoff)
    )
    met["closed"] = due["closed"] & c.closed_at.is_not(None)
    due["reworked"] = c.handled_at.is_not(None)
    met["reworked"] = due["reworked"] & (n("reworks") > 0)
    due["returned"] = c.dispatched_at.is_not(None) | (n("returns") > 0)
    met["returned"] = n("returns") > 0
    due["extended"] = c.id.is_not(None)
    met["extended"] = n("extensions") > 0
    due["separation"] = c.closed_at.is_not(None) & closer.is_not(None) & handler.is_not(None)
    met["separation"] = due["separation"] & (closer != handler)
    out = [literal(1), _flag((c.supervised == True) | (n("supervisions") > 0))]  # noqa: E712
    for r in RATES:
        out += [_flag(met[r]), _flag(due[r])]
    return out


def facts(store: Store, start: datetime, end: datetime, cutoff: datetime) -> Facts:
    """One row per case received in [start, end), void and merged ones too (`_facts_query`).

    The driver's own tuples, not SQLAlchemy rows: a year is 60k rows, and every column is a
    plain number or text (seconds as floats, flags as the bits of `sig`), none needing
    SQLAlchemy's conversion (`triage` stays 0/1 on SQLite: it is only tested for truth)."""
    with store.read_engine.connect() as conn:
        res = conn.execute(_facts_query(start, end, cutoff, conn.dialect.name == "sqlite"))
        return Facts(list(res.keys()), res.cursor.fetchall())


@dataclass
class Facts:
    """The rows of `facts` (tuple-like), and where each column is (`at["status"]`)."""

    columns: list[str]
    rows: Sequence[Any]

    @property
    def at(self) -> dict[str, int]:
        return {c: k for k, c in enumerate(self.columns)}


def assess(
    store: Store, d: Deployment, start: datetime, end: datetime, now: datetime
) -> Assessment:
    """The figures of [start, end); deadlines count as passed up to min(end, now)."""
    cutoff = min(end, now)
    return tally(facts(store, start, end, cutoff), d, start, end, cutoff)


def tally(f: Facts, d: Deployment, start: datetime, end: datetime, cutoff: datetime) -> Assessment:
    spans: list[list[Any]] = [[] for _ in STAGES]  # per stage, a case's seconds by its number
    out = Assessment(start, end, cutoff, Tally(spans))
    at = f.at
    status = at["status"]
    out.overview.count(f.rows, at)
    kept = [r for r in f.rows if r[status] not in _NOT_CASES]  # a case's number: its place
    sigs = list(map(itemgetter(at["sig"]), kept))
    for col, (s, _a, _b) in zip(spans, STAGES, strict=True):
        col.extend(map(itemgetter(at[f"s_{s}"]), kept))
    out.total.sigs.update(sigs)
    out.total.members.extend(range(len(kept)))
    for get, make in _key_groups(d, at, out, spans):
        _add_by_key(kept, sigs, get, make)
    for by in out.by.values():
        for t in by.values():
            t.members.sort()  # a squad's cases come by officer: back in case order
    return out


def _add_by_key(
    kept: list[Row], sigs: list[int], get: Callable[[Row], Any], make: Callable[[Row], list[Tally]]
) -> None:
    """Each case's number under its key (one pass), then each key's tallies in bulk (C-speed
    Counter updates: a year is 60k cases)."""
    numbers: dict[Any, list[int]] = {}
    for k, key in enumerate(map(get, kept)):
        ks = numbers.get(key)
        if ks is None:
            ks = numbers[key] = []
        ks.append(k)
    for ks in numbers.values():
        for t in make(kept[ks[0]]):
            t.sigs.update(map(sigs.__getitem__, ks))
            t.members.extend(ks)


Row = Any  # a fact row (tuple-like)
KeyGroup = tuple[Callable[[Row], Any], Callable[[Row], list["Tally"]]]


def _key_groups(d: Deployment, at: dict[str, int], out: Assessment, spans: Any) -> list[KeyGroup]:
    """The dimensions by the columns their keys come from (an officer and its squad from the
    assignee; a circle from the grid; a category and its group from the category), each
    with the tallies a case with that key counts in."""
    squad_of = {code: s.code for code, (s, _o) in d.officers_by_code.items()}
    circle_of = {g.code: g.circle for g in d.tower.grids}
    group_of = {c.code: c.group for c in d.categories}
    a, kind, grid, src, cat = (
        at[c] for c in ("assignee", "assignee_kind", "grid", "source", "category")
    )

    def tallies(pairs: list[tuple[str, Any]]) -> list[Tally]:
        found = []
        for dim, key in pairs:
            if key is not None:
                by = out.by[dim]
                t = by.get(key)
                if t is None:
                    t = by[key] = Tally(spans)
                found.append(t)
        return found

    def hands(r: Row) -> list[Tally]:
        who, k = r[a], r[kind]
        squad = squad_of.get(who) if k == "officer" else who if k == "squad" else None
        return tallies([("officer", who if k == "officer" else None), ("squad", squad)])

    return [
        (itemgetter(a, kind), hands),
        (itemgetter(grid), lambda r: tallies([("circle", circle_of.get(r[grid]))])),
        (itemgetter(src), lambda r: tallies([("channel", r[src])])),
        (
            itemgetter(cat),
            lambda r: tallies([("category", r[cat]), ("group", group_of.get(r[cat]))]),
        ),
    ]


@dataclass(frozen=True, slots=True)
class CaseLine:
    """One case behind a figure (a drill-down row): plain values, title as received."""

    id: int
    status: str
    received_at: datetime
    category: str | None
    grid: str | None
    assignee: str | None
    title: str


def cases_behind(
    store: Store,
    start: datetime,
    end: datetime,
    *,
    assignees: Iterable[str] = (),
    grids: Iterable[str] = (),
    limit: int = 2000,
) -> list[CaseLine]:
    """The cases received in [start, end) behind a league row (their assignees: an officer,
    or a squad and its officers) or a heat-map cell (`grids`), newest first."""
    c = CASES.c
    q = (
        select(c.id, c.status, c.received_at, c.category, c.grid, c.assignee, c.title)
        .where(c.received_at >= start, c.received_at < end)
        .where(c.status.not_in(_NOT_CASES))
        .order_by(c.received_at.desc(), c.id.desc())
        .limit(limit)
    )
    if assignees:
        q = q.where(c.assignee.in_(list(assignees)))
    if grids:
        q = q.where(c.grid.in_(list(grids)))
    with store.read_engine.connect() as conn:
        return [CaseLine(*r) for r in conn.execute(q)]
