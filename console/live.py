"""The live side of the console: the store-polling loop and the view-model.

The poll runs in a thread worker and only ever posts messages with plain frozen views; the
UI thread keeps `LiveState` (every open case by id) and turns it into the rows the widgets
draw. Nothing here blocks the UI thread on the database.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, and_, func, select
from sqlalchemy import case as sql_case
from tafang.console.i18n import Strings
from tafang.console.messages import (
    Compliance,
    DaemonBeat,
    StoreChanged,
    StoreHealth,
    StoreLoaded,
)
from tafang.store.cases import Store
from tafang.store.changes import ChangeFeed
from tafang.store.clocks import RUNNING, ClockRules, clock_budget
from tafang.store.config import Deployment
from tafang.store.models import Case, Heartbeat
from tafang.store.views import CASE_FIELDS, CaseView, OfficerView
from tafang.widgets.rows import CellSpec, CellState, OfficerRow, PartnerRow, QueueRow
from textual.message import Message

try:  # the SLA policy (working-hour calendars) when it is there; plain columns otherwise
    from tafang.sla.policy import Policy as _Policy
except ImportError:  # pragma: no cover - depends on what has landed
    _Policy = None  # type: ignore[assignment,misc]

DAEMON_STALE = timedelta(seconds=15)


# ---- SLA clock of one case ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ClockInfo:
    """The clock a dispatcher must beat now; `state` is ok | at_risk | breached | none."""

    clock: str | None
    due: datetime | None
    budget: float | None
    state: str


def state_at(row: QueueRow, now: datetime, at_risk: float) -> str:
    """The light of a row at `now`, from its deadline (cheap: called every second per row)."""
    if row.due is None:
        return "none"
    left = (row.due - now).total_seconds()
    if left <= 0:
        return "breached"
    if row.budget_seconds and left <= row.budget_seconds * (1 - at_risk):
        return "at_risk"
    return "ok"


# ---- filters -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Filter:
    """What the queue shows; empty fields match everything."""

    status: str = ""
    channel: str = ""
    circle: str = ""
    text: str = ""
    cell: str = ""

    @property
    def active(self) -> bool:
        return bool(self.status or self.channel or self.circle or self.text or self.cell)


# ---- view-model ----------------------------------------------------------------------------
class ViewModel:
    """Turns store views into widget rows in the UI language (pure: no I/O)."""

    def __init__(self, deployment: Deployment, strings: Strings) -> None:
        self.d = deployment
        self.t = strings
        self.tz = ZoneInfo(deployment.timezone)
        self.at_risk = deployment.sla.at_risk
        self.channels = {c.code: strings.pick(c.name, c.name_en) for c in deployment.channels}
        self.categories = {c.code: strings.pick(c.name, c.name_en) for c in deployment.categories}
        self.circle_names = {c.code: c.name for c in deployment.tower.enforcement_circles}
        self.officer_names = {o.code: o.name for s in deployment.squads for o in s.officers}
        self.squad_names = {s.code: strings.pick(s.name, s.name_en) for s in deployment.squads}
        self.partner_names = {p.code: strings.pick(p.name, p.name_en) for p in deployment.partners}
        self.rules: ClockRules = (
            _Policy(deployment) if _Policy is not None else ClockRules(deployment)
        )
        self._budget_cache: dict[tuple[str | None, str], dict[str, int]] = {}

    def clock(self, case: CaseView, now: datetime) -> ClockInfo:
        """The clock that runs out first, as `sla.policy.Policy.clock_state` picks it.

        Computed here with the budgets cached per (category, priority): the queue builds
        10k of these at start, and the policy's general path costs ~10 µs a case more.
        """
        if case.status == "held":  # clocks stand still: no countdown to draw
            return ClockInfo(None, None, None, "none")
        best: tuple[datetime, int, str] | None = None
        for i, clock in enumerate(RUNNING.get(case.status, ())):
            due = getattr(case, f"{clock}_due")
            if due is not None and (best is None or (due, i) < best[:2]):
                best = (due, i, clock)
        if best is None:
            return ClockInfo(None, None, None, "none")
        due, _, clock = best
        budget = clock_budget(
            clock,
            due,
            float(self._budgets(case.category, case.priority).get(clock, 0)),
            case.received_at,
            case.acknowledged_at,
            case.dispatched_at,
        )
        left = (due - now).total_seconds()
        if left <= 0:
            state = "breached"
        elif left <= budget * (1 - self.at_risk):
            state = "at_risk"
        else:
            state = "ok"
        return ClockInfo(clock, due, budget, state)

    def _budgets(self, category: str | None, priority: str) -> dict[str, int]:
        key = (category, priority)
        b = self._budget_cache.get(key)
        if b is None:
            b = self._budget_cache[key] = self.rules.budgets(category, priority or "normal")
        return b

    def assignee(self, case: CaseView) -> str:
        code = case.assignee
        if not code:
            return ""
        if case.assignee_kind == "officer":
            return f"{code} {self.officer_names.get(code, '')}".strip()
        if case.assignee_kind == "squad":
            return self.squad_names.get(code, code)
        return self.partner_names.get(code, code)

    def describe(self, f: Filter) -> str:
        """A filter in words for the header: names and labels, not codes."""
        cell = self.d.grids_by_code.get(f.cell)
        parts = [
            self.t(f"status.{f.status}") if f.status else "",
            self.channels.get(f.channel, f.channel),
            self.circle_names.get(f.circle, f.circle),
            cell.label if cell else f.cell,
            f.text,
        ]
        return " ".join(p for p in parts if p)

    def grid_label(self, case: CaseView) -> str:
        g = self.d.grids_by_code.get(case.grid or "")
        if g is not None:
            return g.label
        raw = case.raw_fields.get("grid")
        return "?" + (str(raw) if raw not in (None, "") else "")

    def category_name(self, case: CaseView) -> str:
        if case.category and case.category in self.categories:
            return self.categories[case.category]
        raw = case.raw_fields.get("category")
        return "?" + (str(raw) if raw not in (None, "") else "")

    def queue_row(self, case: CaseView, now: datetime) -> QueueRow:
        c = self.clock(case, now)
        return QueueRow(
            case_id=case.id,
            version=case.version,
            status=case.status,
            status_label=self.t(f"status.{case.status}"),
            channel=self.channels.get(case.source, case.source),
            category=self.category_name(case),
            grid_label=self.grid_label(case),
            grid_code=case.grid,
            title=case.display_title,
            assignee=self.assignee(case),
            clock=c.clock,
            due=c.due,
            budget_seconds=c.budget,
            escalation_level=case.escalation_level,
            triage=case.triage,
            supervised=case.supervised,
            priority=case.priority,
        )

    def cell_specs(self) -> list[CellSpec]:
        return [
            CellSpec(
                g.code,
                g.label,
                g.circle,
                self.circle_names.get(g.circle, g.circle),
                g.half,
                g.row,
                g.col,
            )
            for g in self.d.tower.grids
        ]

    def officer_rows(self, officers: Iterable[OfficerView]) -> list[OfficerRow]:
        return [
            OfficerRow(
                code=o.code,
                name=o.name,
                squad=o.squad,
                squad_name=self.squad_names.get(o.squad, o.squad),
                agency=self.t.known(f"agency.{o.agency}", o.agency),
                group=o.group,
                status=o.status,
                status_label=self.t(f"officer.{o.status}"),
                case_id=o.case_id,
                since=o.status_since,
                load=o.load,
            )
            for o in officers
        ]

    def local(self, at: datetime) -> datetime:
        return at.astimezone(self.tz)

    def today_start(self, now: datetime) -> datetime:
        """Local midnight of `now`, in UTC."""
        loc = now.astimezone(self.tz)
        return loc.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def matches(f: Filter, case: CaseView, row: QueueRow, d: Deployment) -> bool:
    """Does a case pass the queue filter? (status, channel, circle, cell, free text)."""
    if f.status and case.status != f.status:
        return False
    if f.channel and case.source != f.channel:
        return False
    if f.cell and case.grid != f.cell:
        return False
    if f.circle:
        g = d.grids_by_code.get(case.grid or "")
        if g is None or g.circle != f.circle:
            return False
    if f.text:
        needle = f.text.lower()
        hay = " ".join(
            (
                str(case.id),
                case.title,
                case.description,
                case.location,
                row.grid_label,
                row.category,
                row.channel,
                row.assignee,
            )
        ).lower()
        if needle not in hay:
            return False
    return True


# ---- live state on the UI thread -------------------------------------------------------------
@dataclass
class Counts:
    open: int = 0
    at_risk: int = 0
    breached: int = 0


_RANK = {"none": 0, "ok": 1, "at_risk": 2, "breached": 3}


class LiveState:
    """Every open case the terminal knows, its row and its light, kept incrementally.

    Lights change only at known instants (the at-risk point and the deadline of each row), so
    they sit in a heap: a tick pops what came due instead of re-reading 10k rows a second,
    and the header counts and the map's per-cell tallies are updated, not recomputed.
    """

    def __init__(self, vm: ViewModel) -> None:
        self.vm = vm
        self.cases: dict[int, CaseView] = {}
        self.rows: dict[int, QueueRow] = {}
        self.officers: list[OfficerView] = []
        self.seq = 0
        self.light: dict[int, str] = {}
        self.tally: dict[str, int] = {"none": 0, "ok": 0, "at_risk": 0, "breached": 0}
        self.cells: dict[str, dict[str, int]] = {}
        self._heap: list[tuple[datetime, int, int]] = []
        self.now = datetime.now(UTC)
        self.dirty = False  # some light changed since the map was last given its state

    # -- rows in and out
    def load(
        self, cases: Sequence[CaseView], now: datetime, rows: Sequence[QueueRow] | None = None
    ) -> None:
        """Start over from a full read (`rows`, when given, are the cases' rows in order)."""
        self.__init__(self.vm)  # type: ignore[misc]
        self.now = now
        made = rows if rows is not None else [self.vm.queue_row(c, now) for c in cases]
        for c, row in zip(cases, made, strict=True):
            if c.is_open:
                self.cases[c.id] = c
                self._put(row)

    def apply(self, cases: Sequence[CaseView], now: datetime) -> bool:
        """Take changed cases in; True if anything on screen changes."""
        changed = False
        for c in cases:
            known = self.cases.get(c.id)
            if known is not None and known.version >= c.version and c.is_open:
                continue  # already shown (an action's answer came before the poll)
            if c.is_open:
                self.cases[c.id] = c
                self._put(self.vm.queue_row(c, now))
                changed = True
            elif known is not None:
                self.cases.pop(c.id, None)
                self._drop(c.id)
                changed = True
        return changed

    def _put(self, row: QueueRow) -> None:
        self._drop(row.case_id)
        self.rows[row.case_id] = row
        self._set_light(row, state_at(row, self.now, self.vm.at_risk))
        self._schedule(row)

    def _drop(self, case_id: int) -> None:
        row = self.rows.pop(case_id, None)
        old = self.light.pop(case_id, None)
        if row is None or old is None:
            return
        self.tally[old] -= 1
        self.dirty = True
        if row.grid_code:
            cell = self.cells[row.grid_code]
            cell[old] -= 1
            cell["n"] -= 1

    def _set_light(self, row: QueueRow, light: str) -> None:
        old = self.light.get(row.case_id)
        if old == light:
            return
        cell = self.cells.setdefault(row.grid_code, _empty_cell()) if row.grid_code else None
        if old is not None:
            self.tally[old] -= 1
            if cell is not None:
                cell[old] -= 1
        elif cell is not None:
            cell["n"] += 1
        self.tally[light] += 1
        if cell is not None:
            cell[light] += 1
        self.light[row.case_id] = light
        self.dirty = True

    def _schedule(self, row: QueueRow) -> None:
        """Push the row's next change of light: its at-risk point, then its deadline."""
        if row.due is None:
            return
        light = self.light[row.case_id]
        if light == "ok" and row.budget_seconds:
            when = row.due - timedelta(seconds=row.budget_seconds * (1 - self.vm.at_risk))
        elif light in ("ok", "at_risk"):
            when = row.due
        else:
            return
        heapq.heappush(self._heap, (when, row.case_id, row.version))

    # -- time passing
    def advance(self, now: datetime) -> list[int]:
        """Move the clock to `now`; the ids that breached since the last call."""
        self.now = now
        newly: list[int] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, cid, version = heapq.heappop(heap)
            row = self.rows.get(cid)
            if row is None or row.version != version:
                continue  # the case changed or left since this was scheduled
            before = self.light.get(cid)
            light = state_at(row, now, self.vm.at_risk)
            self._set_light(row, light)
            if light == "breached" and before != "breached":
                newly.append(cid)
            self._schedule(row)
        return newly

    def tick(self, now: datetime) -> tuple[Counts, list[int]]:
        """Counts for the header and the ids that breached since the last tick."""
        newly = self.advance(now)
        return self.counts(), newly

    def counts(self) -> Counts:
        return Counts(len(self.rows), self.tally["at_risk"], self.tally["breached"])

    @property
    def breached(self) -> set[int]:
        return {i for i, s in self.light.items() if s == "breached"}

    # -- what the widgets get
    def sorted_rows(self, f: Filter) -> list[QueueRow]:
        """The rows that pass the filter (the queue widget orders them by urgency)."""
        if not f.active:
            return list(self.rows.values())
        d = self.vm.d
        return [r for i, r in self.rows.items() if matches(f, self.cases[i], r, d)]

    def rows_for(self, ids: Iterable[int], f: Filter) -> tuple[list[QueueRow], list[int]]:
        """What a few changed cases mean for the queue: the rows of `ids` it now shows (they
        pass the filter) and the ids it no longer shows, so it need not be rebuilt."""
        shown: list[QueueRow] = []
        gone: list[int] = []
        d = self.vm.d
        for i in ids:
            row = self.rows.get(i)
            if row is not None and (not f.active or matches(f, self.cases[i], row, d)):
                shown.append(row)
            else:
                gone.append(i)
        return shown, gone

    def cell_states(self, now: datetime | None = None) -> list[CellState]:
        there: dict[str, int] = {}
        for o in self.officers:
            if o.grid and o.status in ("en_route", "on_scene"):
                there[o.grid] = there.get(o.grid, 0) + 1
        out = []
        for g in self.vm.d.tower.grids:
            c = self.cells.get(g.code)
            n = c["n"] if c else 0
            worst = "none"
            if c and n:
                worst = "ok"
                for light in ("breached", "at_risk"):
                    if c[light]:
                        worst = light
                        break
            out.append(CellState(g.code, n, worst, there.get(g.code, 0)))
        return out

    def partner_rows(self, handled_today: dict[str, int]) -> list[PartnerRow]:
        open_by: dict[str, int] = {}
        for c in self.cases.values():
            if c.assignee_kind == "partner" and c.assignee:
                open_by[c.assignee] = open_by.get(c.assignee, 0) + 1
        return [
            PartnerRow(
                p.code,
                self.vm.partner_names[p.code],
                open_by.get(p.code, 0),
                handled_today.get(p.code, 0),
            )
            for p in self.vm.d.partners
        ]


def _empty_cell() -> dict[str, int]:
    return {"n": 0, "none": 0, "ok": 0, "at_risk": 0, "breached": 0}


# ---- reads the poll makes besides the cases ---------------------------------------------------
_TIME_FIELDS = frozenset(f.name for f in fields(CaseView) if "datetime" in str(f.type))
_BOOL_FIELDS = frozenset(f.name for f in fields(CaseView) if str(f.type) == "bool")
_OPEN_SELECT = (
    f"SELECT {', '.join(CASE_FIELDS)} FROM cases "
    "WHERE status NOT IN ('closed', 'void', 'merged') ORDER BY received_at, id"
)


def open_cases(store: Store) -> list[CaseView]:
    """Every open case, as `store.cases("open")` returns them.

    On SQLite the rows are read straight from the driver and the times parsed with
    `datetime.fromisoformat` (how SQLAlchemy stores them: UTC, no offset): about four times
    faster than the ORM's per-value type processing, which dominates the first frame with
    10k open cases. Other databases go through the store.
    """
    engine = store.read_engine
    if engine.dialect.name != "sqlite":
        return store.cases("open")
    conn = engine.raw_connection()
    try:
        cur = conn.cursor()
        cur.execute(_OPEN_SELECT)
        rows = cur.fetchall()
    finally:
        conn.close()
    times = [i for i, f in enumerate(CASE_FIELDS) if f in _TIME_FIELDS]
    bools = [i for i, f in enumerate(CASE_FIELDS) if f in _BOOL_FIELDS]
    parse = datetime.fromisoformat  # "+00:00" appended: 6x faster than .replace(tzinfo=)
    out = []
    for r in rows:
        v = list(r)
        for i in times:
            if v[i] is not None:
                v[i] = parse(v[i] + "+00:00")
        for i in bools:
            v[i] = bool(v[i])
        out.append(CaseView(*v))
    return out


def daemon_heartbeat(engine: Engine) -> datetime | None:
    """When the daemon last said it was alive (None: never)."""
    t = Heartbeat.__table__
    with engine.connect() as conn:
        return conn.execute(select(t.c.at).where(t.c.name == "daemon")).scalar_one_or_none()


def daemon_text(t: Strings, beat: datetime | None, now: datetime, tz: ZoneInfo) -> tuple[str, bool]:
    """Header words for the daemon and whether it is healthy."""
    if beat is not None and now - beat <= DAEMON_STALE:
        return t("header.daemon_ok"), True
    if beat is None:
        return t("header.daemon_down"), False
    return t("header.daemon_down_since", since=beat.astimezone(tz).strftime("%H:%M")), False


def todays_compliance(engine: Engine, since: datetime, now: datetime) -> tuple[int, int]:
    """1-3-5 compliance of cases received since `since`: (met, due) over the three stages.

    A stage counts once it was done (met if on time) or its deadline passed while it still
    ran; cases voided or merged before a stage do not count for it. One aggregate query, so
    a busy day costs the poll thread one row, not thousands.
    """
    t = Case.__table__
    met: list[Any] = []
    due: list[Any] = []
    for stage, done_col in (
        ("respond", t.c.acknowledged_at),
        ("dispatch", t.c.dispatched_at),
        ("arrive", t.c.arrived_at),
    ):
        dl = t.c[f"{stage}_due"]
        running = [st for st, clocks in RUNNING.items() if stage in clocks]
        met.append(func.sum(sql_case((and_(done_col.is_not(None), done_col <= dl), 1), else_=0)))
        due.append(
            func.sum(
                sql_case(
                    (and_(dl.is_not(None), done_col.is_not(None)), 1),
                    (and_(dl.is_not(None), t.c.status.in_(running), dl < now), 1),
                    else_=0,
                )
            )
        )
    q = select(*met, *due).where(t.c.received_at >= since)
    with engine.connect() as conn:
        row = conn.execute(q).one()
    return sum(x or 0 for x in row[:3]), sum(x or 0 for x in row[3:])


def partners_handled(engine: Engine, since: datetime) -> dict[str, int]:
    t = Case.__table__
    q = (
        select(t.c.assignee, func.count())
        .where(t.c.assignee_kind == "partner")
        .where(t.c.handled_at >= since)
        .group_by(t.c.assignee)
    )
    with engine.connect() as conn:
        return {a: n for a, n in conn.execute(q).all()}


class PartnersHandled(Message):
    def __init__(self, counts: dict[str, int]) -> None:
        super().__init__()
        self.counts = counts


# ---- the poll loop -----------------------------------------------------------------------------
def poll(
    store: Store,
    post: Callable[[Message], object],
    *,
    now: Callable[[], datetime],
    cancelled: Callable[[], bool],
    interval: float = 0.3,
    slow_every: float = 30.0,
    first_slow: float = 1.5,
    vm: ViewModel | None = None,
    idle: float = 1.0,
    feed: ChangeFeed | None = None,
) -> None:
    """Watch the store until cancelled: a full load, then deltas whenever `change_seq` moves.

    Between looks it waits on a `ChangeFeed` (PostgreSQL NOTIFY, SQLite data_version), so a
    change elsewhere is read within milliseconds; it still looks every `idle` seconds (the
    daemon heartbeat, and a safety net should a notification be lost). Any exception is a
    store outage: the screen keeps what it has, the header says since when, and the loop
    retries with backoff from `interval` (up to 5 s) until the store answers again. With
    `vm`, the first load's queue rows are built here too, off the UI thread. A `feed`
    passed in is the caller's to close; otherwise one is opened here and closed on exit.
    """
    own_feed = feed is None
    if feed is None:
        try:
            feed = ChangeFeed(store.engine)
        except Exception:  # no feed at all: plain polling every `interval`
            feed = None
    try:
        _poll_loop(store, post, now, cancelled, interval, slow_every, first_slow, vm, idle, feed)
    finally:
        if own_feed and feed is not None:
            feed.close()


def _poll_loop(
    store: Store,
    post: Callable[[Message], object],
    now: Callable[[], datetime],
    cancelled: Callable[[], bool],
    interval: float,
    slow_every: float,
    first_slow: float,
    vm: ViewModel | None,
    idle: float,
    feed: ChangeFeed | None,
) -> None:
    vm_tz_start: Callable[[datetime], datetime] = _today_start(store.d.timezone)
    seq: int | None = None
    down_since: datetime | None = None
    backoff = interval
    last_beat = last_slow = 0.0
    while not cancelled():
        healthy = False
        try:
            if seq is None:
                s = store.change_seq()
                cases = open_cases(store)
                t = now()
                rows = [vm.queue_row(c, t) for c in cases] if vm is not None else None
                post(StoreLoaded(s, cases, store.officers(), rows))
                seq = s
                # the day's figures wait until the first frame is up
                last_slow = time.monotonic() - slow_every + first_slow
            else:
                s = store.change_seq()
                if s != seq:
                    changed = store.changed_since(seq)
                    post(StoreChanged(s, changed, store.officers()))
                    seq = max([s, *(c.updated_seq for c in changed)])
            mono = time.monotonic()
            if mono - last_beat >= 1.0:
                post(DaemonBeat(daemon_heartbeat(store.read_engine)))
                last_beat = mono
            if mono - last_slow >= slow_every:
                t = now()
                start = vm_tz_start(t)
                post(Compliance(*todays_compliance(store.read_engine, start, t)))
                post(PartnersHandled(partners_handled(store.read_engine, start)))
                last_slow = mono
            if down_since is not None:
                down_since = None
                post(StoreHealth(None))
            backoff = interval
            healthy = True
        except Exception as e:  # an outage of any kind: keep the screen, say so, retry
            if down_since is None:
                down_since = now()
            post(StoreHealth(down_since, f"{type(e).__name__}: {e}"[:300]))
            backoff = min(backoff * 2, 5.0)
        if healthy and feed is not None:
            _await_change(feed, min(idle, max(0.0, last_beat + 1.0 - time.monotonic())), cancelled)
        else:
            _sleep(backoff, cancelled)


def _await_change(feed: ChangeFeed, seconds: float, cancelled: Callable[[], bool]) -> None:
    """Wait on the feed in short slices (so cancelling stays quick) until a change or time."""
    end = time.monotonic() + seconds
    while not cancelled():
        left = end - time.monotonic()
        if left <= 0:
            return
        try:
            if feed.wait(min(left, 0.1)):
                return
        except Exception:  # the feed itself broke: fall back to sleeping the slice
            _sleep(min(left, 0.1), cancelled)


def _sleep(seconds: float, cancelled: Callable[[], bool]) -> None:
    end = time.monotonic() + seconds
    while not cancelled():
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.05))


def _today_start(tz_name: str) -> Callable[[datetime], datetime]:
    tz = ZoneInfo(tz_name)

    def start(now: datetime) -> datetime:
        loc = now.astimezone(tz)
        return loc.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)

    return start
